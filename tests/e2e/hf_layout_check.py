#!/usr/bin/python3
"""Checks that an exported model directory is what Hugging Face's loaders need, without transformers.

Debian 12 packages neither transformers, tokenizers nor safetensors, so this script re-states what
their loaders require (read from their sources) and checks the directory against it:

  * config.json: the BertConfig keys, architectures ["BertForMaskedLM"], model_type "bert";
  * model.safetensors: parsed with json + struct (every format rule), metadata {"format": "pt"}, the
    exact tensor names and shapes BertForMaskedLM.state_dict() has minus what save_pretrained drops
    (the tied cls.predictions.decoder.weight/.bias), the dtype config.json's torch_dtype names;
  * vocab.txt, tokenizer.json (the `tokenizers` serialization of BertTokenizerFast),
    tokenizer_config.json, special_tokens_map.json;
  * with --reference FILE (a safetensors file holding int64 "input_ids" [B,L] and float32
    "logits" [B,L,V] computed by mpibert): an independent PyTorch implementation of Hugging Face's
    BertForMaskedLM forward (modeling_bert: post-LayerNorm, erf GELU, tied decoder) on the exported
    weights must reproduce those logits.

Usage: hf_layout_check.py EXPORT_DIR [--reference FILE] [--atol 1e-4]
Prints one line per check group and "OK"; exits 1 with the first failure.
"""
import argparse
import json
import math
import os
import struct
import sys

DTYPES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
          "U16": 2, "U32": 4, "U64": 8, "F8_E5M2": 1, "F8_E4M3": 1}
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


class CheckError(Exception):
    pass


def check(cond, message):
    if not cond:
        raise CheckError(message)


def read_safetensors(path):
    """Returns (metadata, {name: (dtype, shape, bytes)}) after checking every rule of the format."""
    with open(path, "rb") as f:
        data = f.read()
    check(len(data) >= 8, f"{path}: shorter than 8 bytes")
    (n,) = struct.unpack("<Q", data[:8])
    check(n <= 100_000_000 and 8 + n <= len(data), f"{path}: header length {n} invalid")
    check(n % 8 == 0, f"{path}: header length {n} not a multiple of 8 (the reference writer pads)")
    text = data[8:8 + n].decode("utf-8")
    check(text.startswith("{"), f"{path}: header does not start with {{")

    def no_duplicates(pairs):
        keys = [k for k, _ in pairs]
        check(len(keys) == len(set(keys)), f"{path}: duplicate keys {keys}")
        return dict(pairs)

    header = json.loads(text, object_pairs_hook=no_duplicates)
    metadata = header.pop("__metadata__", {})
    check(all(isinstance(v, str) for v in metadata.values()), f"{path}: metadata values must be strings")
    buffer = data[8 + n:]
    entries = []
    for name, info in header.items():
        check(set(info) == {"dtype", "shape", "data_offsets"}, f"{path}: {name}: keys {sorted(info)}")
        check(info["dtype"] in DTYPES, f"{path}: {name}: dtype {info['dtype']}")
        shape = info["shape"]
        check(all(isinstance(d, int) and d >= 0 for d in shape), f"{path}: {name}: shape {shape}")
        begin, end = info["data_offsets"]
        check(end - begin == math.prod(shape) * DTYPES[info["dtype"]], f"{path}: {name}: offsets vs shape")
        entries.append((begin, end, name, info["dtype"], shape))
    entries.sort()
    pos = 0
    for begin, end, name, _, _ in entries:
        check(begin == pos, f"{path}: {name}: begins at {begin}, expected {pos} (hole or overlap)")
        pos = end
    check(pos == len(buffer), f"{path}: tensors cover {pos} bytes of a {len(buffer)}-byte buffer")
    tensors = {name: (dtype, shape, buffer[b:e]) for b, e, name, dtype, shape in entries}
    return metadata, tensors


def expected_tensors(cfg):
    """BertForMaskedLM(config).state_dict() as save_pretrained(safe_serialization=True) writes it."""
    H, I, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    out = {
        "bert.embeddings.word_embeddings.weight": [V, H],
        "bert.embeddings.position_embeddings.weight": [cfg["max_position_embeddings"], H],
        "bert.embeddings.token_type_embeddings.weight": [cfg["type_vocab_size"], H],
        "bert.embeddings.LayerNorm.weight": [H],
        "bert.embeddings.LayerNorm.bias": [H],
        "cls.predictions.bias": [V],
        "cls.predictions.transform.dense.weight": [H, H],
        "cls.predictions.transform.dense.bias": [H],
        "cls.predictions.transform.LayerNorm.weight": [H],
        "cls.predictions.transform.LayerNorm.bias": [H],
    }
    for i in range(cfg["num_hidden_layers"]):
        p = f"bert.encoder.layer.{i}."
        for m in ("query", "key", "value"):
            out[p + f"attention.self.{m}.weight"] = [H, H]
            out[p + f"attention.self.{m}.bias"] = [H]
        out[p + "attention.output.dense.weight"] = [H, H]
        out[p + "attention.output.dense.bias"] = [H]
        out[p + "attention.output.LayerNorm.weight"] = [H]
        out[p + "attention.output.LayerNorm.bias"] = [H]
        out[p + "intermediate.dense.weight"] = [I, H]
        out[p + "intermediate.dense.bias"] = [I]
        out[p + "output.dense.weight"] = [H, I]
        out[p + "output.dense.bias"] = [H]
        out[p + "output.LayerNorm.weight"] = [H]
        out[p + "output.LayerNorm.bias"] = [H]
    return out


def check_config(d):
    with open(os.path.join(d, "config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    check(cfg.get("architectures") == ["BertForMaskedLM"], f"config.json: architectures {cfg.get('architectures')}")
    check(cfg.get("model_type") == "bert", "config.json: model_type must be bert")
    for key in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                "max_position_embeddings", "type_vocab_size", "pad_token_id"):
        check(isinstance(cfg.get(key), int) and not isinstance(cfg.get(key), bool), f"config.json: {key} must be an int")
    for key in ("layer_norm_eps", "hidden_dropout_prob", "attention_probs_dropout_prob", "initializer_range"):
        check(isinstance(cfg.get(key), (int, float)), f"config.json: {key} must be a number")
    check(cfg.get("hidden_act") in ("gelu", "gelu_new", "gelu_pytorch_tanh", "relu"), "config.json: hidden_act")
    check(cfg.get("torch_dtype") in ("float32", "bfloat16"), f"config.json: torch_dtype {cfg.get('torch_dtype')}")
    check(cfg.get("position_embedding_type", "absolute") == "absolute", "config.json: position_embedding_type")
    check(cfg["hidden_size"] % cfg["num_attention_heads"] == 0, "config.json: hidden_size % num_attention_heads")
    return cfg


def check_weights(d, cfg):
    metadata, tensors = read_safetensors(os.path.join(d, "model.safetensors"))
    check(metadata == {"format": "pt"}, f"model.safetensors: metadata {metadata} (transformers writes format=pt)")
    expected = expected_tensors(cfg)
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    check(not missing, f"model.safetensors: missing {missing[:5]}")
    check(not extra, f"model.safetensors: unexpected {extra[:5]}")
    want = {"float32": "F32", "bfloat16": "BF16"}[cfg["torch_dtype"]]
    for name, shape in expected.items():
        dtype, got, _ = tensors[name]
        check(got == shape, f"model.safetensors: {name} shape {got}, expected {shape}")
        check(dtype == want, f"model.safetensors: {name} dtype {dtype}, config.json says {want}")
    # The reference writer's order: one dtype here, so tensors sorted by name along the buffer.
    return tensors


def check_tokenizer(d, cfg):
    with open(os.path.join(d, "vocab.txt"), encoding="utf-8") as f:
        vocab = [line.rstrip() for line in f.read().split("\n")]
    if vocab and vocab[-1] == "":
        vocab.pop()
    check(0 < len(vocab) <= cfg["vocab_size"], f"vocab.txt: {len(vocab)} tokens, vocab_size {cfg['vocab_size']}")
    ids = {}
    for i, t in enumerate(vocab):
        ids[t] = i
    for s in SPECIALS:
        check(s in ids, f"vocab.txt: no {s}")
    check(ids["[PAD]"] == cfg["pad_token_id"], "config.json: pad_token_id is not [PAD]'s id")

    with open(os.path.join(d, "tokenizer.json"), encoding="utf-8") as f:
        tok = json.load(f)
    check(tok.get("version") == "1.0", "tokenizer.json: version must be 1.0 (tokenizers rejects others)")
    check(tok.get("truncation") is None and tok.get("padding") is None, "tokenizer.json: truncation/padding")
    added = tok["added_tokens"]
    check([(a["id"], a["content"]) for a in added] == sorted((ids[s], s) for s in SPECIALS),
          "tokenizer.json: added_tokens must be the 5 specials in id order")
    for a in added:
        check(set(a) == {"id", "content", "single_word", "lstrip", "rstrip", "normalized", "special"},
              f"tokenizer.json: added token fields {sorted(a)}")
        check(a["special"] is True and a["normalized"] is False, "tokenizer.json: added token flags")
    norm = tok["normalizer"]
    check(norm == {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                   "strip_accents": None, "lowercase": norm.get("lowercase")}
          and isinstance(norm.get("lowercase"), bool), f"tokenizer.json: normalizer {norm}")
    check(tok["pre_tokenizer"] == {"type": "BertPreTokenizer"}, "tokenizer.json: pre_tokenizer")
    post = tok["post_processor"]
    cls_, sep = ids["[CLS]"], ids["[SEP]"]
    check(post == {
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                   {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
        "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                 {"SpecialToken": {"id": "[SEP]", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}},
                 {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
        "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [cls_], "tokens": ["[CLS]"]},
                           "[SEP]": {"id": "[SEP]", "ids": [sep], "tokens": ["[SEP]"]}},
    }, "tokenizer.json: post_processor")
    check(tok["decoder"] == {"type": "WordPiece", "prefix": "##", "cleanup": True}, "tokenizer.json: decoder")
    model = tok["model"]
    check(model["type"] == "WordPiece" and model["unk_token"] == "[UNK]" and model["continuing_subword_prefix"] == "##"
          and model["max_input_chars_per_word"] == 100, "tokenizer.json: model fields")
    check(model["vocab"] == ids, "tokenizer.json: model.vocab differs from vocab.txt")

    with open(os.path.join(d, "tokenizer_config.json"), encoding="utf-8") as f:
        tc = json.load(f)
    check(tc.get("tokenizer_class") == "BertTokenizer", "tokenizer_config.json: tokenizer_class")
    check(tc.get("do_lower_case") == norm["lowercase"], "tokenizer_config.json: do_lower_case vs tokenizer.json")
    check(tc.get("model_max_length") == cfg["max_position_embeddings"], "tokenizer_config.json: model_max_length")
    for role, token in (("cls_token", "[CLS]"), ("sep_token", "[SEP]"), ("pad_token", "[PAD]"), ("unk_token", "[UNK]"),
                        ("mask_token", "[MASK]")):
        check(tc.get(role) == token, f"tokenizer_config.json: {role}")
    check({int(k): v["content"] for k, v in tc["added_tokens_decoder"].items()} == {ids[s]: s for s in SPECIALS},
          "tokenizer_config.json: added_tokens_decoder")
    with open(os.path.join(d, "special_tokens_map.json"), encoding="utf-8") as f:
        stm = json.load(f)
    check(stm == {"cls_token": "[CLS]", "mask_token": "[MASK]", "pad_token": "[PAD]", "sep_token": "[SEP]",
                  "unk_token": "[UNK]"}, "special_tokens_map.json")
    return len(vocab)


def hf_bert_mlm_logits(cfg, w, input_ids):
    """Hugging Face modeling_bert BertForMaskedLM.forward (eval, attention mask all ones)."""
    import torch
    import torch.nn.functional as F

    H, nh = cfg["hidden_size"], cfg["num_attention_heads"]
    dh, eps = H // nh, cfg["layer_norm_eps"]
    act = {"gelu": lambda x: F.gelu(x), "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
           "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"), "relu": F.relu}[cfg["hidden_act"]]

    def lin(x, p):
        return F.linear(x, w[p + ".weight"], w[p + ".bias"])

    def ln(x, p):
        return F.layer_norm(x, (H,), w[p + ".weight"], w[p + ".bias"], eps)

    B, L = input_ids.shape
    pos = torch.arange(L).unsqueeze(0)
    x = (w["bert.embeddings.word_embeddings.weight"][input_ids] + w["bert.embeddings.token_type_embeddings.weight"][0]
         + w["bert.embeddings.position_embeddings.weight"][pos])
    x = ln(x, "bert.embeddings.LayerNorm")
    for i in range(cfg["num_hidden_layers"]):
        p = f"bert.encoder.layer.{i}."

        def heads(t):
            return t.view(B, L, nh, dh).permute(0, 2, 1, 3)

        q, k, v = (heads(lin(x, p + f"attention.self.{m}")) for m in ("query", "key", "value"))
        probs = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(dh), dim=-1)
        ctx = (probs @ v).permute(0, 2, 1, 3).reshape(B, L, H)
        x = ln(lin(ctx, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
        inter = act(lin(x, p + "intermediate.dense"))
        x = ln(lin(inter, p + "output.dense") + x, p + "output.LayerNorm")
    t = ln(act(lin(x, "cls.predictions.transform.dense")), "cls.predictions.transform.LayerNorm")
    # The decoder is tied: weight = word embeddings, bias = cls.predictions.bias.
    return F.linear(t, w["bert.embeddings.word_embeddings.weight"], w["cls.predictions.bias"])


def to_torch(dtype, shape, raw):
    import torch
    t = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16, "F64": torch.float64,
         "I64": torch.int64}[dtype]
    if not raw:
        return torch.zeros(shape, dtype=t)
    return torch.frombuffer(bytearray(raw), dtype=t).reshape(shape).clone()


def check_logits(cfg, tensors, reference, atol):
    import torch
    _, ref = read_safetensors(reference)
    ids = to_torch(*ref["input_ids"]).long()
    expected = to_torch(*ref["logits"]).float()
    w = {name: to_torch(*t).float() for name, t in tensors.items()}
    with torch.no_grad():
        got = hf_bert_mlm_logits(cfg, w, ids)
    diff = (got - expected).abs().max().item()
    check(got.shape == expected.shape, f"logits shape {tuple(got.shape)} vs {tuple(expected.shape)}")
    check(diff <= atol, f"logits differ from Hugging Face's forward by {diff} (> {atol})")
    return diff


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--reference")
    ap.add_argument("--atol", type=float, default=1e-4)
    args = ap.parse_args()
    try:
        cfg = check_config(args.dir)
        print(f"config.json: ok ({cfg['num_hidden_layers']} layers x {cfg['hidden_size']}, {cfg['torch_dtype']})")
        tensors = check_weights(args.dir, cfg)
        print(f"model.safetensors: ok ({len(tensors)} tensors, names and shapes of BertForMaskedLM)")
        n = check_tokenizer(args.dir, cfg)
        print(f"tokenizer files: ok ({n} tokens)")
        if args.reference:
            diff = check_logits(cfg, tensors, args.reference, args.atol)
            print(f"logits: ok (max |diff| vs an independent HF-style forward = {diff:.3g})")
    except (CheckError, KeyError, ValueError, OSError) as e:
        print(f"hf_layout_check: FAILED: {e}", file=sys.stderr)
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
