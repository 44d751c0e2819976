"""What Hugging Face's loaders need from an exported BERT directory, re-stated without transformers.

Shared by hf_layout_check.py (BertForMaskedLM) and hf_cls_check.py (BertForSequenceClassification).
Debian 12 packages neither transformers, tokenizers nor safetensors, so this module holds, written from
their sources and format specs:

  * read_safetensors / write_safetensors: the safetensors format (json + struct + numpy only);
  * check_bert_config, encoder_tensor_shapes, check_tensor_layout: BertConfig keys and the names and
    shapes of BertModel's state_dict as save_pretrained writes them;
  * check_tokenizer / write_tokenizer_files: vocab.txt, tokenizer.json (BertTokenizerFast),
    tokenizer_config.json, special_tokens_map.json;
  * hf_bert_encoder: an independent transcription of modeling_bert's BertModel forward in eval mode
    (embeddings with token types, post-LayerNorm layers, HF's additive attention mask).
"""
import json
import math
import os
import struct

import numpy as np

DTYPES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
          "U16": 2, "U32": 4, "U64": 8, "F8_E5M2": 1, "F8_E4M3": 1}
NUMPY_OF = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
            "U8": "u1", "BOOL": "?", "U16": "<u2", "U32": "<u4", "U64": "<u8"}
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "relu")


class CheckError(Exception):
    pass


def check(cond, message):
    if not cond:
        raise CheckError(message)


# --- safetensors ---
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


def decode(dtype, shape, raw):
    """A stored tensor as a numpy array; BF16 becomes the float32 it stands for (its top 16 bits)."""
    if dtype == "BF16":
        bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
        return bits.view(np.float32).reshape(shape)
    check(dtype in NUMPY_OF, f"dtype {dtype} cannot be decoded here")
    return np.frombuffer(raw, dtype=NUMPY_OF[dtype]).reshape(shape).copy()


def bf16_bytes(array):
    """float32 -> bfloat16 bytes, rounded to nearest even (as torch's .to(torch.bfloat16))."""
    bits = np.ascontiguousarray(array, dtype="<f4").view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype("<u2").tobytes()


def write_safetensors(path, tensors, metadata=None, dtype="F32"):
    """Writes {name: numpy array} as safetensors: floats stored as `dtype` (F32 or BF16), integers as I64.
    Layout as the reference writer: tensors sorted by name, header padded with spaces to 8 bytes."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        a = np.asarray(tensors[name])
        if a.dtype.kind == "f":
            kind = dtype
            raw = bf16_bytes(a) if kind == "BF16" else np.ascontiguousarray(a, dtype="<f4").tobytes()
        else:
            kind, raw = "I64", np.ascontiguousarray(a, dtype="<i8").tobytes()
        header[name] = {"dtype": kind, "shape": list(a.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata is not None:
        header = {"__metadata__": metadata, **header}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


# --- config.json and the tensor layout ---
def check_bert_config(d, architecture):
    """config.json's BertConfig keys; returns the parsed dict."""
    with open(os.path.join(d, "config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    check(cfg.get("architectures") == [architecture], f"config.json: architectures {cfg.get('architectures')}")
    check(cfg.get("model_type") == "bert", "config.json: model_type must be bert")
    for key in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                "max_position_embeddings", "type_vocab_size", "pad_token_id"):
        check(isinstance(cfg.get(key), int) and not isinstance(cfg.get(key), bool), f"config.json: {key} must be an int")
    for key in ("layer_norm_eps", "hidden_dropout_prob", "attention_probs_dropout_prob", "initializer_range"):
        check(isinstance(cfg.get(key), (int, float)), f"config.json: {key} must be a number")
    check(cfg.get("hidden_act") in ACTIVATIONS, "config.json: hidden_act")
    check(cfg.get("torch_dtype") in ("float32", "bfloat16"), f"config.json: torch_dtype {cfg.get('torch_dtype')}")
    check(cfg.get("position_embedding_type", "absolute") == "absolute", "config.json: position_embedding_type")
    check(cfg["hidden_size"] % cfg["num_attention_heads"] == 0, "config.json: hidden_size % num_attention_heads")
    return cfg


def encoder_tensor_shapes(cfg):
    """BertModel's embeddings and encoder tensors (prefix "bert."), as save_pretrained writes them."""
    H, I, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    out = {
        "bert.embeddings.word_embeddings.weight": [V, H],
        "bert.embeddings.position_embeddings.weight": [cfg["max_position_embeddings"], H],
        "bert.embeddings.token_type_embeddings.weight": [cfg["type_vocab_size"], H],
        "bert.embeddings.LayerNorm.weight": [H],
        "bert.embeddings.LayerNorm.bias": [H],
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


def check_tensor_layout(d, cfg, expected):
    """model.safetensors holds exactly `expected` ({name: shape}) in config.json's torch_dtype."""
    metadata, tensors = read_safetensors(os.path.join(d, "model.safetensors"))
    check(metadata == {"format": "pt"}, f"model.safetensors: metadata {metadata} (transformers writes format=pt)")
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    check(not missing, f"model.safetensors: missing {missing[:5]}")
    check(not extra, f"model.safetensors: unexpected {extra[:5]}")
    want = {"float32": "F32", "bfloat16": "BF16"}[cfg["torch_dtype"]]
    for name, shape in expected.items():
        dtype, got, _ = tensors[name]
        check(got == shape, f"model.safetensors: {name} shape {got}, expected {shape}")
        check(dtype == want, f"model.safetensors: {name} dtype {dtype}, config.json says {want}")
    return tensors


# --- tokenizer files ---
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
    check(tok["post_processor"] == post_processor(ids["[CLS]"], ids["[SEP]"]), "tokenizer.json: post_processor")
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
    check(stm == special_tokens_map(), "special_tokens_map.json")
    return len(vocab)


def post_processor(cls_id, sep_id):
    """BertTokenizerFast's TemplateProcessing: [CLS] $A [SEP] and [CLS] $A [SEP] $B:1 [SEP]:1."""
    def piece(kind, name, type_id):
        return {kind: {"id": name, "type_id": type_id}}
    return {
        "type": "TemplateProcessing",
        "single": [piece("SpecialToken", "[CLS]", 0), piece("Sequence", "A", 0), piece("SpecialToken", "[SEP]", 0)],
        "pair": [piece("SpecialToken", "[CLS]", 0), piece("Sequence", "A", 0), piece("SpecialToken", "[SEP]", 0),
                 piece("Sequence", "B", 1), piece("SpecialToken", "[SEP]", 1)],
        "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [cls_id], "tokens": ["[CLS]"]},
                           "[SEP]": {"id": "[SEP]", "ids": [sep_id], "tokens": ["[SEP]"]}},
    }


def special_tokens_map():
    return {"cls_token": "[CLS]", "mask_token": "[MASK]", "pad_token": "[PAD]", "sep_token": "[SEP]",
            "unk_token": "[UNK]"}


def write_tokenizer_files(d, vocab, lowercase, model_max_length):
    """The four tokenizer files for `vocab` (a token list holding the 5 specials); for self-tests."""
    ids = {t: i for i, t in enumerate(vocab)}
    added = [{"id": ids[s], "content": s, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for s in sorted(SPECIALS, key=ids.get)]
    tok = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
           "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                          "strip_accents": None, "lowercase": lowercase},
           "pre_tokenizer": {"type": "BertPreTokenizer"},
           "post_processor": post_processor(ids["[CLS]"], ids["[SEP]"]),
           "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
           "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                     "max_input_chars_per_word": 100, "vocab": ids}}
    decoder = {str(ids[s]): {"content": s, "lstrip": False, "normalized": False, "rstrip": False,
                             "single_word": False, "special": True} for s in SPECIALS}
    config = {"added_tokens_decoder": decoder, "clean_up_tokenization_spaces": True, "cls_token": "[CLS]",
              "do_basic_tokenize": True, "do_lower_case": lowercase, "mask_token": "[MASK]",
              "model_max_length": model_max_length, "never_split": None, "pad_token": "[PAD]", "sep_token": "[SEP]",
              "strip_accents": None, "tokenize_chinese_chars": True, "tokenizer_class": "BertTokenizer",
              "unk_token": "[UNK]"}
    with open(os.path.join(d, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("".join(t + "\n" for t in vocab))
    for name, obj in (("tokenizer.json", tok), ("tokenizer_config.json", config),
                      ("special_tokens_map.json", special_tokens_map())):
        with open(os.path.join(d, name), "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=2, sort_keys=name != "tokenizer.json")


# --- the forward ---
def to_torch(dtype, shape, raw):
    """A stored tensor as a torch tensor (BF16 widened to the float32 it stands for)."""
    import torch
    return torch.from_numpy(np.array(decode(dtype, shape, raw)))


def float_weights(tensors):
    """{name: float32 torch tensor}: what from_pretrained builds with its default torch_dtype (float32)."""
    return {name: to_torch(*t).float() for name, t in tensors.items()}


def hf_bert_encoder(cfg, w, input_ids, token_type_ids=None, attention_mask=None):
    """modeling_bert BertModel.forward, eval mode: the last hidden state [B, L, H].

    Embeddings: word + token_type (zeros when not given) + absolute position, LayerNorm. The attention
    mask (ones when not given) becomes HF's additive mask (1 - mask) * finfo(float32).min on the scores.
    Layers: post-LayerNorm self-attention and feed-forward with config.hidden_act (gelu = erf GELU)."""
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
    if token_type_ids is None:
        token_type_ids = torch.zeros_like(input_ids)
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    extended = (1.0 - attention_mask[:, None, None, :].to(torch.float32)) * torch.finfo(torch.float32).min
    pos = torch.arange(L).unsqueeze(0)
    x = (w["bert.embeddings.word_embeddings.weight"][input_ids]
         + w["bert.embeddings.token_type_embeddings.weight"][token_type_ids]
         + w["bert.embeddings.position_embeddings.weight"][pos])
    x = ln(x, "bert.embeddings.LayerNorm")
    for i in range(cfg["num_hidden_layers"]):
        p = f"bert.encoder.layer.{i}."

        def heads(t):
            return t.view(B, L, nh, dh).permute(0, 2, 1, 3)

        q, k, v = (heads(lin(x, p + f"attention.self.{m}")) for m in ("query", "key", "value"))
        scores = q @ k.transpose(-1, -2) / math.sqrt(dh) + extended
        probs = torch.softmax(scores, dim=-1)
        ctx = (probs @ v).permute(0, 2, 1, 3).reshape(B, L, H)
        x = ln(lin(ctx, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
        inter = act(lin(x, p + "intermediate.dense"))
        x = ln(lin(inter, p + "output.dense") + x, p + "output.LayerNorm")
    return x
