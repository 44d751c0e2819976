#!/usr/bin/python3
"""Checks that an exported model directory is what Hugging Face's loaders need, without transformers.

Debian 12 packages neither transformers, tokenizers nor safetensors, so this script re-states what
their loaders require (read from their sources; the shared rules live in hf_bert_reference.py) and
checks the directory against it:

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
import sys

from hf_bert_reference import (CheckError, check, check_bert_config, check_tensor_layout, check_tokenizer,
                               encoder_tensor_shapes, float_weights, hf_bert_encoder, read_safetensors, to_torch)


def expected_tensors(cfg):
    """BertForMaskedLM(config).state_dict() as save_pretrained(safe_serialization=True) writes it."""
    H, V = cfg["hidden_size"], cfg["vocab_size"]
    out = encoder_tensor_shapes(cfg)
    out.update({
        "cls.predictions.bias": [V],
        "cls.predictions.transform.dense.weight": [H, H],
        "cls.predictions.transform.dense.bias": [H],
        "cls.predictions.transform.LayerNorm.weight": [H],
        "cls.predictions.transform.LayerNorm.bias": [H],
    })
    return out


def hf_bert_mlm_logits(cfg, w, input_ids):
    """Hugging Face modeling_bert BertForMaskedLM.forward (eval, attention mask all ones)."""
    import torch.nn.functional as F

    H = cfg["hidden_size"]
    act = {"gelu": lambda x: F.gelu(x), "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
           "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"), "relu": F.relu}[cfg["hidden_act"]]
    x = hf_bert_encoder(cfg, w, input_ids)
    t = act(F.linear(x, w["cls.predictions.transform.dense.weight"], w["cls.predictions.transform.dense.bias"]))
    t = F.layer_norm(t, (H,), w["cls.predictions.transform.LayerNorm.weight"],
                     w["cls.predictions.transform.LayerNorm.bias"], cfg["layer_norm_eps"])
    # The decoder is tied: weight = word embeddings, bias = cls.predictions.bias.
    return F.linear(t, w["bert.embeddings.word_embeddings.weight"], w["cls.predictions.bias"])


def check_logits(cfg, tensors, reference, atol):
    import torch
    _, ref = read_safetensors(reference)
    ids = to_torch(*ref["input_ids"]).long()
    expected = to_torch(*ref["logits"]).float()
    w = float_weights(tensors)
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
        cfg = check_bert_config(args.dir, "BertForMaskedLM")
        print(f"config.json: ok ({cfg['num_hidden_layers']} layers x {cfg['hidden_size']}, {cfg['torch_dtype']})")
        tensors = check_tensor_layout(args.dir, cfg, expected_tensors(cfg))
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
