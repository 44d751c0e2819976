#!/usr/bin/python3
"""Checks an exported BertForSequenceClassification directory as transformers would load it.

Without transformers (Debian 12 has none): the rules come from transformers' sources and live, shared
with hf_layout_check.py, in hf_bert_reference.py.

  * config.json: the BertConfig keys, architectures ["BertForSequenceClassification"], model_type
    "bert", the labels (id2label keys are the strings "0".."n-1", names unique; label2id its inverse;
    num_labels, when written, equal to len(id2label); without id2label transformers assumes
    num_labels or 2 labels named LABEL_i), problem_type absent/null or one of regression,
    single_label_classification (needs >= 2 labels), multi_label_classification; classifier_dropout
    null or in [0, 1); type_vocab_size >= 1;
  * model.safetensors: every format rule, metadata {"format": "pt"}, exactly the tensors
    save_pretrained writes for BertForSequenceClassification (bert.embeddings.*, bert.encoder.*,
    bert.pooler.dense.*, classifier.weight [num_labels, H], classifier.bias [num_labels]; no cls.*,
    no position_ids), all in config.json's torch_dtype;
  * the tokenizer files (vocab.txt, tokenizer.json, tokenizer_config.json, special_tokens_map.json);
  * with --inputs: an independent eval-mode transcription of modeling_bert's
    BertForSequenceClassification.forward (float32, as from_pretrained loads by default):
    logits = classifier(dropout(tanh(pooler.dense(hidden[:, 0])))), dropout the identity in eval.
    With --expect-logits it compares them with the given ones (max |diff| <= --atol) and, if given,
    with the text-classification pipeline's top-1 predictions.

Usage:
  hf_cls_check.py DIR [--inputs INPUTS.json [--expect-logits EXPECT.json] [--write-logits OUT.json]]
                  [--atol A]
  hf_cls_check.py --self-test
--atol defaults to 1e-4 for float32 weights and 1e-2 for bfloat16 weights (the other side may compute
in bf16). Prints one line per check group and "OK"; exits 1 at the first failure, 2 on bad usage.

INPUTS.json (what the tokenizer returns, padded to one length L <= max_position_embeddings):
  {"input_ids": [[101, 7592, 102, 0], ...],      # int, [B][L], each < vocab_size
   "token_type_ids": [[0, 0, 0, 0], ...],        # optional (zeros), each < type_vocab_size
   "attention_mask": [[1, 1, 1, 0], ...]}        # optional (ones), 0 or 1
EXPECT.json (what mpibert computed; --write-logits writes the same shape from the reference):
  {"logits": [[0.12, -0.7, 1.3], ...],           # float, [B][num_labels]
   "predictions": [{"label": "positive", "score": 0.71}, ...],   # optional, one per row
   "function_to_apply": "softmax"}               # optional: sigmoid|softmax|none; default as the pipeline
"predictions" is the pipeline's default output per row: id2label[argmax] and the top score after the
pipeline's function (regression: none; multi-label or 1 label: sigmoid; otherwise softmax).
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

from hf_bert_reference import (CheckError, check, check_bert_config, check_tensor_layout, check_tokenizer,
                               encoder_tensor_shapes, float_weights, hf_bert_encoder, write_safetensors,
                               write_tokenizer_files)

PROBLEM_TYPES = ("regression", "single_label_classification", "multi_label_classification")
DEFAULT_ATOL = {"float32": 1e-4, "bfloat16": 1e-2}


# --- config.json ---
def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def check_labels(cfg):
    """The label names in id order, as PretrainedConfig.__init__ derives them."""
    id2label = cfg.get("id2label")
    if id2label is None:  # transformers: num_labels (default 2) labels named LABEL_i
        n = cfg.get("num_labels", 2)
        check(is_int(n) and n >= 1, f"config.json: num_labels {n!r} must be an int >= 1")
        labels = [f"LABEL_{i}" for i in range(n)]
    else:
        check(isinstance(id2label, dict) and id2label, "config.json: id2label must be a non-empty object")
        keys = sorted(id2label)
        check(all(k.isascii() and k.isdigit() and str(int(k)) == k for k in keys),
              f"config.json: id2label keys {keys[:5]} must be the strings of ints")
        n = len(id2label)
        check(sorted(int(k) for k in keys) == list(range(n)), f"config.json: id2label keys must be 0..{n - 1}")
        labels = [id2label[str(i)] for i in range(n)]
        check(all(isinstance(v, str) for v in labels), "config.json: id2label values must be strings")
        check(len(set(labels)) == n, f"config.json: id2label names repeat: {labels}")
        if "num_labels" in cfg:
            check(cfg["num_labels"] == n, f"config.json: num_labels {cfg['num_labels']} but id2label has {n}")
    label2id = cfg.get("label2id")
    if label2id is not None:
        check(label2id == {name: i for i, name in enumerate(labels)},
              f"config.json: label2id {label2id} is not the inverse of id2label {labels}")
    return labels


def check_cls_config(d):
    cfg = check_bert_config(d, "BertForSequenceClassification")
    check(cfg["type_vocab_size"] >= 1, "config.json: type_vocab_size must be >= 1")
    labels = check_labels(cfg)
    problem = cfg.get("problem_type")
    check(problem is None or problem in PROBLEM_TYPES,
          f"config.json: problem_type {problem!r}; valid: null, {', '.join(PROBLEM_TYPES)}")
    check(problem != "single_label_classification" or len(labels) >= 2,
          "config.json: single_label_classification needs num_labels >= 2 (cross-entropy over 1 class is 0)")
    dropout = cfg.get("classifier_dropout")
    check(dropout is None or (isinstance(dropout, (int, float)) and 0 <= dropout < 1),
          f"config.json: classifier_dropout {dropout!r} must be null or in [0, 1)")
    return cfg, labels


def expected_tensors(cfg, num_labels):
    """BertForSequenceClassification(config).state_dict() as save_pretrained writes it."""
    H = cfg["hidden_size"]
    out = encoder_tensor_shapes(cfg)
    out.update({"bert.pooler.dense.weight": [H, H], "bert.pooler.dense.bias": [H],
                "classifier.weight": [num_labels, H], "classifier.bias": [num_labels]})
    return out


# --- the forward and the pipeline ---
def hf_bert_cls_logits(cfg, w, input_ids, token_type_ids=None, attention_mask=None):
    """modeling_bert BertForSequenceClassification.forward in eval mode (dropouts are the identity)."""
    import torch
    import torch.nn.functional as F
    hidden = hf_bert_encoder(cfg, w, input_ids, token_type_ids, attention_mask)
    pooled = torch.tanh(F.linear(hidden[:, 0], w["bert.pooler.dense.weight"], w["bert.pooler.dense.bias"]))
    return F.linear(pooled, w["classifier.weight"], w["classifier.bias"])


def pipeline_function(cfg, num_labels):
    """TextClassificationPipeline.postprocess's default function_to_apply."""
    problem = cfg.get("problem_type")
    if problem == "regression":
        return "none"
    if problem == "multi_label_classification" or num_labels == 1:
        return "sigmoid"
    return "softmax"


def pipeline_scores(logits, function):
    x = np.asarray(logits, dtype=np.float64)
    if function == "sigmoid":
        return 1.0 / (1.0 + np.exp(-x))
    if function == "softmax":
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    check(function == "none", f"function_to_apply {function!r}; valid: sigmoid, softmax, none")
    return x


def pipeline_predictions(labels, logits, function):
    """The pipeline's default (top-1) result per row: {"label": id2label[argmax], "score": max}."""
    scores = pipeline_scores(logits, function)
    return [{"label": labels[int(s.argmax())], "score": float(s.max())} for s in scores]


# --- inputs and expectations ---
def int_matrix(value, name, rows=None, cols=None):
    ok = (isinstance(value, list) and value and all(isinstance(r, list) and r for r in value)
          and all(is_int(v) for r in value for v in r))
    check(ok, f"inputs: {name} must be a non-empty list of non-empty lists of ints")
    check(len({len(r) for r in value}) == 1, f"inputs: {name} rows differ in length (pad them)")
    check(rows is None or (len(value), len(value[0])) == (rows, cols),
          f"inputs: {name} is {len(value)}x{len(value[0])}, input_ids {rows}x{cols}")
    return np.array(value, dtype=np.int64)


def read_inputs(path, cfg):
    import torch
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    check(isinstance(doc, dict) and "input_ids" in doc, f"{path}: needs an object with input_ids")
    ids = int_matrix(doc["input_ids"], "input_ids")
    B, L = ids.shape
    tt = int_matrix(doc["token_type_ids"], "token_type_ids", B, L) if "token_type_ids" in doc else np.zeros_like(ids)
    mask = int_matrix(doc["attention_mask"], "attention_mask", B, L) if "attention_mask" in doc else np.ones_like(ids)
    check(L <= cfg["max_position_embeddings"], f"inputs: length {L} > max_position_embeddings")
    check(ids.min() >= 0 and ids.max() < cfg["vocab_size"], f"inputs: input_ids outside [0, {cfg['vocab_size']})")
    check(tt.min() >= 0 and tt.max() < cfg["type_vocab_size"],
          f"inputs: token_type_ids outside [0, {cfg['type_vocab_size']})")
    check(set(np.unique(mask).tolist()) <= {0, 1}, "inputs: attention_mask values must be 0 or 1")
    return torch.from_numpy(ids), torch.from_numpy(tt), torch.from_numpy(mask)


def compare_predictions(expected, got_logits, labels, function, atol):
    scores = pipeline_scores(got_logits, function)
    check(isinstance(expected, list) and len(expected) == len(scores),
          f"predictions: {len(expected) if isinstance(expected, list) else expected!r} rows, logits {len(scores)}")
    for r, (e, s) in enumerate(zip(expected, scores)):
        check(isinstance(e, dict) and e.get("label") in labels and isinstance(e.get("score"), (int, float)),
              f"predictions[{r}]: {e!r} needs a label of id2label and a numeric score")
        top = float(s.max())
        # A different label is acceptable only where the two scores tie within atol.
        check(e["label"] == labels[int(s.argmax())] or top - s[labels.index(e["label"])] <= atol,
              f"predictions[{r}]: label {e['label']!r}, the reference says {labels[int(s.argmax())]!r}")
        check(abs(e["score"] - top) <= atol, f"predictions[{r}]: score {e['score']} vs {top} (> {atol})")


def compare_logits(expect_path, got, labels, cfg, atol):
    with open(expect_path, encoding="utf-8") as f:
        doc = json.load(f)
    check(isinstance(doc, dict) and "logits" in doc, f"{expect_path}: needs an object with logits")
    rows = doc["logits"]
    ok = isinstance(rows, list) and all(isinstance(r, list) and all(isinstance(v, (int, float)) for v in r)
                                        for r in rows)
    check(ok, f"{expect_path}: logits must be a list of lists of numbers")
    expected = np.array(rows, dtype=np.float64)
    check(expected.shape == got.shape, f"logits shape {list(expected.shape)}, expected {list(got.shape)}")
    diff = float(np.abs(expected - got).max())
    print(f"logits: max |diff| = {diff:.3g} over {got.shape[0]} rows x {got.shape[1]} labels (atol {atol:g})")
    check(diff <= atol, f"logits differ from Hugging Face's forward by {diff} (> {atol})")
    if "predictions" in doc:
        function = doc.get("function_to_apply", pipeline_function(cfg, len(labels)))
        compare_predictions(doc["predictions"], got, labels, function, atol)
        print(f"predictions: ok ({function}, {len(labels)} labels)")
    return diff


def run_checks(d, inputs=None, expect=None, write=None, atol=None):
    """Every check on directory d; raises CheckError at the first failure."""
    import torch
    cfg, labels = check_cls_config(d)
    print(f"config.json: ok ({cfg['num_hidden_layers']} layers x {cfg['hidden_size']}, {cfg['torch_dtype']}, "
          f"{len(labels)} labels, problem_type {cfg.get('problem_type')})")
    tensors = check_tensor_layout(d, cfg, expected_tensors(cfg, len(labels)))
    print(f"model.safetensors: ok ({len(tensors)} tensors, names and shapes of BertForSequenceClassification)")
    print(f"tokenizer files: ok ({check_tokenizer(d, cfg)} tokens)")
    if inputs is None:
        check(expect is None and write is None, "--expect-logits and --write-logits need --inputs")
        return None
    ids, tt, mask = read_inputs(inputs, cfg)
    with torch.no_grad():
        got = hf_bert_cls_logits(cfg, float_weights(tensors), ids, tt, mask).double().numpy()
    if write:
        with open(write, "w", encoding="utf-8") as f:
            json.dump({"logits": got.tolist(), "predictions": pipeline_predictions(
                labels, got, pipeline_function(cfg, len(labels)))}, f, indent=1)
        print(f"logits: written to {write}")
    if expect:
        tol = DEFAULT_ATOL[cfg["torch_dtype"]] if atol is None else atol
        return compare_logits(expect, got, labels, cfg, tol)
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir", nargs="?")
    ap.add_argument("--inputs")
    ap.add_argument("--expect-logits")
    ap.add_argument("--write-logits")
    ap.add_argument("--atol", type=float)
    ap.add_argument("--self-test", action="store_true")
    args = ap.parse_args()
    if args.self_test:
        return self_test()
    if not args.dir:
        ap.error("DIR is required (or --self-test)")
    try:
        run_checks(args.dir, args.inputs, args.expect_logits, args.write_logits, args.atol)
    except (CheckError, KeyError, ValueError, OSError) as e:
        print(f"hf_cls_check: FAILED: {e}", file=sys.stderr)
        return 1
    print("OK")
    return 0


# --- self-test: random models, a second formulation of the forward, and broken directories ---
def alt_logits(cfg, w, ids, tt, mask):
    """The same model computed differently, in float64: F.embedding, explicit LayerNorm and GELU
    formulas, torch's multi_head_attention_forward with a key padding mask, einsum feed-forward."""
    import torch
    import torch.nn.functional as F
    w = {k: v.double() for k, v in w.items()}
    H, nh, eps = cfg["hidden_size"], cfg["num_attention_heads"], cfg["layer_norm_eps"]

    def norm(x, p):
        mu = x.mean(-1, keepdim=True)
        var = ((x - mu) ** 2).mean(-1, keepdim=True)
        return (x - mu) / torch.sqrt(var + eps) * w[p + ".weight"] + w[p + ".bias"]

    def act(x):
        if cfg["hidden_act"] == "gelu":
            return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))
        if cfg["hidden_act"] == "relu":
            return x.clamp(min=0)
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))

    e = "bert.embeddings."
    x = (F.embedding(ids, w[e + "word_embeddings.weight"]) + F.embedding(tt, w[e + "token_type_embeddings.weight"])
         + w[e + "position_embeddings.weight"][: ids.shape[1]].unsqueeze(0))
    x = norm(x, e + "LayerNorm").transpose(0, 1)  # [L, B, H], as multi_head_attention_forward wants
    for i in range(cfg["num_hidden_layers"]):
        p = f"bert.encoder.layer.{i}."
        s = p + "attention.self."
        attn, _ = F.multi_head_attention_forward(
            x, x, x, H, nh, torch.cat([w[s + m + ".weight"] for m in ("query", "key", "value")]),
            torch.cat([w[s + m + ".bias"] for m in ("query", "key", "value")]), None, None, False, 0.0,
            w[p + "attention.output.dense.weight"], w[p + "attention.output.dense.bias"], training=False,
            key_padding_mask=mask == 0, need_weights=False)
        x = norm(attn + x, p + "attention.output.LayerNorm")
        h = act(torch.einsum("lbh,ih->lbi", x, w[p + "intermediate.dense.weight"]) + w[p + "intermediate.dense.bias"])
        x = norm(torch.einsum("lbi,hi->lbh", h, w[p + "output.dense.weight"]) + w[p + "output.dense.bias"] + x,
                 p + "output.LayerNorm")
    pooled = torch.tanh(torch.einsum("bh,oh->bo", x[0], w["bert.pooler.dense.weight"]) + w["bert.pooler.dense.bias"])
    return torch.einsum("bh,oh->bo", pooled, w["classifier.weight"]) + w["classifier.bias"]


def random_state(cfg, num_labels, gen):
    """A BertForSequenceClassification-shaped state with O(1) activations (so that errors show)."""
    import torch
    state = {}
    for name, shape in expected_tensors(cfg, num_labels).items():
        if name.endswith("LayerNorm.weight"):
            t = 1.0 + 0.2 * torch.randn(shape, generator=gen)
        elif name.endswith(".bias"):
            t = 0.2 * torch.randn(shape, generator=gen)
        elif "embeddings" in name:
            t = torch.randn(shape, generator=gen)
        else:
            t = torch.randn(shape, generator=gen) * (1.5 / math.sqrt(shape[1]))
        state[name] = t.float()
    return state


def sample_inputs(cfg, gen):
    """Four rows padded to 12: lengths 12, 7, 5, 9; rows 0 and 3 are sentence pairs (token types 1)."""
    import torch
    vocab = cfg["vocab_size"]
    rows = []
    for r, (n, split) in enumerate([(12, 6), (7, None), (5, None), (9, 4)]):
        body = torch.randint(5, vocab, (n,), generator=gen).tolist()
        ids = [2] + body[1:n - 1] + [3] + [0] * (12 - n)
        tt = [0] * 12
        if split:
            ids[split] = 3
            tt[split + 1:n] = [1] * (n - split - 1)
        rows.append((ids, tt, [1] * n + [0] * (12 - n)))
    return {"input_ids": [r[0] for r in rows], "token_type_ids": [r[1] for r in rows],
            "attention_mask": [r[2] for r in rows]}


def write_fixture(d, num_labels, dtype="F32", problem_type=None, labels=None, seed=0, act="gelu"):
    """An exported-looking directory plus inputs.json and expect.json from alt_logits."""
    import torch
    os.makedirs(d)
    gen = torch.Generator().manual_seed(seed)
    cfg = {"architectures": ["BertForSequenceClassification"], "model_type": "bert", "vocab_size": 60,
           "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64,
           "hidden_act": act, "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
           "max_position_embeddings": 16, "type_vocab_size": 2, "initializer_range": 0.02, "layer_norm_eps": 1e-12,
           "pad_token_id": 0, "position_embedding_type": "absolute", "use_cache": True, "classifier_dropout": None,
           "torch_dtype": {"F32": "float32", "BF16": "bfloat16"}[dtype]}
    if labels is not None:
        cfg["id2label"] = {str(i): name for i, name in enumerate(labels)}
        cfg["label2id"] = {name: i for i, name in enumerate(labels)}
    if problem_type:
        cfg["problem_type"] = problem_type
    state = random_state(cfg, num_labels, gen)
    write_safetensors(os.path.join(d, "model.safetensors"), {k: v.numpy() for k, v in state.items()},
                      {"format": "pt"}, dtype)
    write_tokenizer_files(d, ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(5, 60)],
                          True, cfg["max_position_embeddings"])
    json_dump(os.path.join(d, "config.json"), cfg)
    inputs = sample_inputs(cfg, gen)
    json_dump(os.path.join(d, "inputs.json"), inputs)
    if dtype == "BF16":  # the other side sees the stored (rounded) weights
        state = {k: v.to(torch.bfloat16).float() for k, v in state.items()}
    tensors = [torch.tensor(inputs[k]) for k in ("input_ids", "token_type_ids", "attention_mask")]
    logits = alt_logits(cfg, state, *tensors).numpy()
    names = labels or [f"LABEL_{i}" for i in range(num_labels)]
    json_dump(os.path.join(d, "expect.json"), {"logits": logits.tolist(), "predictions": pipeline_predictions(
        names, logits, pipeline_function(cfg, num_labels))})
    return cfg, state, tensors


def json_dump(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1)


def edit_json(path, change):
    with open(path, encoding="utf-8") as f:
        obj = json.load(f)
    change(obj)
    json_dump(path, obj)


def edit_state(d, change):
    """Rewrites d/model.safetensors after change(state) edits {name: numpy array}."""
    from hf_bert_reference import decode, read_safetensors
    _, tensors = read_safetensors(os.path.join(d, "model.safetensors"))
    state = {k: decode(*t) for k, t in tensors.items()}
    change(state)
    write_safetensors(os.path.join(d, "model.safetensors"), state, {"format": "pt"}, "F32")


def negative_cases(alt_inputs):
    """(name, edit(d), message expected in the failure): each breaks one rule of the f32 fixture."""
    def logits(change):
        return lambda d: edit_json(os.path.join(d, "expect.json"), change)

    def bump(doc):
        doc["logits"][1][2] += 2e-4

    def relabel(doc):
        doc["predictions"][0]["label"] = next(n for n in ("neg", "neu", "pos") if n != doc["predictions"][0]["label"])

    def mask_ignored(doc):  # what a forward that attends to padding would give
        doc["logits"] = alt_inputs["no_mask"]

    def types_ignored(doc):  # what a forward that drops token_type_ids would give
        doc["logits"] = alt_inputs["no_types"]

    def config(change):
        return lambda d: edit_json(os.path.join(d, "config.json"), change)

    def state(change):
        return lambda d: edit_state(d, change)

    return [
        ("logits off by 2e-4", logits(bump), "logits differ"),
        ("padding attended", logits(mask_ignored), "logits differ"),
        ("token types dropped", logits(types_ignored), "logits differ"),
        ("wrong predicted label", logits(relabel), "predictions[0]: label"),
        ("MLM head left in", state(lambda s: s.update({"cls.predictions.bias": np.zeros(60, np.float32)})),
         "unexpected ['cls.predictions.bias']"),
        ("position_ids saved", state(lambda s: s.update({"bert.embeddings.position_ids": np.arange(16)[None]})),
         "unexpected"),
        ("pooler missing", state(lambda s: s.pop("bert.pooler.dense.bias")), "missing ['bert.pooler.dense.bias']"),
        ("classifier rows != labels", state(lambda s: s.update({"classifier.weight": np.zeros((4, 32), np.float32)})),
         "classifier.weight shape [4, 32]"),
        ("architectures MLM", config(lambda c: c.update(architectures=["BertForMaskedLM"])), "architectures"),
        ("id2label int-like keys 1..3", config(lambda c: c.update(id2label={"1": "neg", "2": "neu", "3": "pos"})),
         "id2label keys must be 0..2"),
        ("id2label key '01'", config(lambda c: c.update(id2label={"01": "neg", "1": "neu", "2": "pos"})),
         "strings of ints"),
        ("label2id not the inverse", config(lambda c: c.update(label2id={"neg": 1, "neu": 0, "pos": 2})),
         "not the inverse"),
        ("num_labels disagrees", config(lambda c: c.update(num_labels=4)), "num_labels 4"),
        ("problem_type unknown", config(lambda c: c.update(problem_type="multiclass")), "problem_type 'multiclass'"),
        ("classifier_dropout 1.5", config(lambda c: c.update(classifier_dropout=1.5)), "classifier_dropout"),
        ("token type >= type_vocab_size",
         lambda d: edit_json(os.path.join(d, "inputs.json"), lambda i: i["token_type_ids"][0].__setitem__(7, 2)),
         "token_type_ids outside"),
        ("tokenizer.json missing", lambda d: os.remove(os.path.join(d, "tokenizer.json")), "tokenizer.json"),
    ]


def run_quietly(d, atol=None, write=None):
    """run_checks with its progress lines swallowed; returns (error message or None, diff)."""
    import contextlib
    import io
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            diff = run_checks(d, os.path.join(d, "inputs.json"), os.path.join(d, "expect.json"), write, atol)
        except (CheckError, KeyError, ValueError, OSError) as e:
            return str(e), None
    return None, diff


def self_test():
    import torch
    failures = []

    def expect(cond, what):
        print(("ok    " if cond else "FAIL  ") + what)
        if not cond:
            failures.append(what)

    root = tempfile.mkdtemp(prefix="hf_cls_check_")
    try:
        # Passing directories: label sets, dtypes, problem types and activations the exporter may write.
        good = [("f32, 3 named labels, single-label", dict(num_labels=3, labels=["neg", "neu", "pos"],
                                                          problem_type="single_label_classification"), 1e-5),
                ("bf16 weights, 5 labels, no problem_type", dict(num_labels=5, dtype="BF16",
                                                                 labels=[f"c{i}" for i in range(5)], seed=1), 1e-4),
                ("regression, 1 label, tanh GELU", dict(num_labels=1, labels=["score"], problem_type="regression",
                                                        seed=2, act="gelu_new"), 1e-5),
                ("multi-label, 4 labels (sigmoid)", dict(num_labels=4, labels=list("abcd"), seed=3,
                                                         problem_type="multi_label_classification"), 1e-5),
                ("no id2label: transformers' 2 default labels", dict(num_labels=2, seed=4), 1e-5)]
        for i, (name, kwargs, bound) in enumerate(good):
            d = os.path.join(root, f"good{i}")
            write_fixture(d, **kwargs)
            error, diff = run_quietly(d)
            expect(error is None and diff < bound, f"{name}: passes, max |diff| {diff} < {bound} ({error})")

        # The reference must not depend on what padded positions hold.
        base = os.path.join(root, "base")
        cfg, state, (ids, tt, mask) = write_fixture(base, 3, labels=["neg", "neu", "pos"])
        with torch.no_grad():
            ref = hf_bert_cls_logits(cfg, state, ids, tt, mask)
            noisy = torch.where(mask == 1, ids, torch.randint(5, 60, ids.shape))
            moved = hf_bert_cls_logits(cfg, state, noisy, tt, mask)
            alt = {"no_mask": alt_logits(cfg, state, ids, tt, torch.ones_like(mask)).tolist(),
                   "no_types": alt_logits(cfg, state, ids, torch.zeros_like(tt), mask).tolist()}
        expect(torch.equal(ref, moved), "reference: token ids under attention_mask 0 do not change the logits")
        for key in alt:
            gap = float((torch.tensor(alt[key]) - ref.double()).abs().max())
            expect(gap > 1e-2, f"fixture is sensitive: {key} moves the logits by {gap:.3g}")

        # Broken directories and expectations must fail, naming the problem.
        for i, (name, edit, message) in enumerate(negative_cases(alt)):
            d = os.path.join(root, f"bad{i}")
            shutil.copytree(base, d)
            edit(d)
            error, _ = run_quietly(d)
            expect(error is not None and message in error, f"{name}: fails with '{message}' (got: {error})")

        # The command line: exit status 0 / 1 / 2 and the printed difference.
        script = os.path.abspath(__file__)
        good_run = subprocess.run([sys.executable, script, base, "--inputs", os.path.join(base, "inputs.json"),
                                   "--expect-logits", os.path.join(base, "expect.json"),
                                   "--write-logits", os.path.join(root, "written.json")],
                                  capture_output=True, text=True)
        expect(good_run.returncode == 0 and "max |diff|" in good_run.stdout and good_run.stdout.endswith("OK\n"),
               f"CLI: exit 0, prints max |diff| and OK (rc {good_run.returncode}: {good_run.stderr.strip()})")
        with open(os.path.join(root, "written.json"), encoding="utf-8") as f:
            written = json.load(f)
        shutil.copy(os.path.join(root, "written.json"), os.path.join(base, "expect.json"))
        error, diff = run_quietly(base)
        expect(error is None and diff == 0.0 and len(written["predictions"]) == 4,
               f"CLI: --write-logits output passes as --expect-logits (diff {diff}, {error})")
        bad = os.path.join(root, "bad0")
        bad_run = subprocess.run([sys.executable, script, bad, "--inputs", os.path.join(bad, "inputs.json"),
                                  "--expect-logits", os.path.join(bad, "expect.json")], capture_output=True, text=True)
        expect(bad_run.returncode == 1 and "max |diff| = 0.0002" in bad_run.stdout and "FAILED" in bad_run.stderr,
               f"CLI: exit 1 and the difference printed when logits are off (rc {bad_run.returncode})")
        usage_run = subprocess.run([sys.executable, script], capture_output=True, text=True)
        expect(usage_run.returncode == 2, f"CLI: exit 2 without DIR (rc {usage_run.returncode})")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"self-test: {'FAILED ' + str(len(failures)) if failures else 'OK'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
