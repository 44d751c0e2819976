#!/usr/bin/python3
"""The Python baseline for bench_step: BertForMaskedLM as Hugging Face's modeling_bert computes it
(eager PyTorch, dense MLM head over every position, CrossEntropyLoss(ignore_index=-100), the HF
Trainer's gradient clipping and torch.optim.AdamW), re-written here in plain PyTorch because the
Debian python3-torch (1.13) has no transformers. Run it with /usr/bin/python3.

  baseline_step.py bench --preset mini --batch_dir DIR [--precision fp32|bf16] [--steps N] ...
      times training steps on the batch bench_step wrote (input_ids.bin, labels.bin: int64 [B, L]);
      prints one JSON object.
  baseline_step.py reference --dir DIR
      loads a config + HF-named float32 tensors + a batch written by model_test, writes the dense
      logits, the summed loss and every parameter's gradient (the C++ model must match them).
"""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

PRESETS = {  # layers, hidden, heads, ffn (Google's BERT miniatures and the originals)
    "tiny": (2, 128, 2, 512), "mini": (4, 256, 4, 1024), "small": (4, 512, 8, 2048),
    "medium": (8, 512, 8, 2048), "base": (12, 768, 12, 3072), "large": (24, 1024, 16, 4096),
}


def preset_config(name, vocab):
    layers, hidden, heads, ffn = PRESETS[name.replace("bert-", "")]
    return dict(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                intermediate_size=ffn, hidden_act="gelu", hidden_dropout_prob=0.1,
                attention_probs_dropout_prob=0.1, max_position_embeddings=512, type_vocab_size=2,
                initializer_range=0.02, layer_norm_eps=1e-12, pad_token_id=0)


class LayerNorm(nn.LayerNorm):
    # torch 1.13's CPU layer_norm rejects bf16 input with fp32 weights (autocast leaves it alone);
    # newer torch computes that case in fp32, which is what this does.
    def forward(self, x):
        return super().forward(x.float() if x.dtype != self.weight.dtype else x)


def act_fn(name):
    return {"gelu": F.gelu, "relu": F.relu,
            "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
            "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh")}[name]


# --- modeling_bert, trimmed to what BertForMaskedLM uses (names as in transformers) ---
class BertEmbeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.word_embeddings = nn.Embedding(c["vocab_size"], c["hidden_size"], padding_idx=c["pad_token_id"])
        self.position_embeddings = nn.Embedding(c["max_position_embeddings"], c["hidden_size"])
        self.token_type_embeddings = nn.Embedding(c["type_vocab_size"], c["hidden_size"])
        self.LayerNorm = LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])
        self.dropout = nn.Dropout(c["hidden_dropout_prob"])
        self.register_buffer("position_ids", torch.arange(c["max_position_embeddings"]).expand((1, -1)),
                             persistent=False)

    def forward(self, input_ids):
        seq_len = input_ids.size(1)
        position_ids = self.position_ids[:, :seq_len]
        token_type_ids = torch.zeros_like(input_ids)
        embeddings = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        embeddings = embeddings + self.position_embeddings(position_ids)
        return self.dropout(self.LayerNorm(embeddings))


class BertSelfAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.num_attention_heads = c["num_attention_heads"]
        self.attention_head_size = c["hidden_size"] // c["num_attention_heads"]
        self.all_head_size = self.num_attention_heads * self.attention_head_size
        self.query = nn.Linear(c["hidden_size"], self.all_head_size)
        self.key = nn.Linear(c["hidden_size"], self.all_head_size)
        self.value = nn.Linear(c["hidden_size"], self.all_head_size)
        self.dropout = nn.Dropout(c["attention_probs_dropout_prob"])

    def transpose_for_scores(self, x):
        x = x.view(x.size()[:-1] + (self.num_attention_heads, self.attention_head_size))
        return x.permute(0, 2, 1, 3)

    def forward(self, hidden_states, attention_mask):
        query_layer = self.transpose_for_scores(self.query(hidden_states))
        key_layer = self.transpose_for_scores(self.key(hidden_states))
        value_layer = self.transpose_for_scores(self.value(hidden_states))
        attention_scores = torch.matmul(query_layer, key_layer.transpose(-1, -2))
        attention_scores = attention_scores / math.sqrt(self.attention_head_size)
        attention_scores = attention_scores + attention_mask
        attention_probs = self.dropout(F.softmax(attention_scores, dim=-1))
        context_layer = torch.matmul(attention_probs, value_layer)
        context_layer = context_layer.permute(0, 2, 1, 3).contiguous()
        return context_layer.view(context_layer.size()[:-2] + (self.all_head_size,))


class BertSelfOutput(nn.Module):
    def __init__(self, c, in_size):
        super().__init__()
        self.dense = nn.Linear(in_size, c["hidden_size"])
        self.LayerNorm = LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])
        self.dropout = nn.Dropout(c["hidden_dropout_prob"])

    def forward(self, hidden_states, input_tensor):
        return self.LayerNorm(self.dropout(self.dense(hidden_states)) + input_tensor)


class BertAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.self = BertSelfAttention(c)
        self.output = BertSelfOutput(c, c["hidden_size"])

    def forward(self, hidden_states, attention_mask):
        return self.output(self.self(hidden_states, attention_mask), hidden_states)


class BertIntermediate(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["intermediate_size"])
        self.act = act_fn(c["hidden_act"])

    def forward(self, x):
        return self.act(self.dense(x))


class BertLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.attention = BertAttention(c)
        self.intermediate = BertIntermediate(c)
        self.output = BertSelfOutput(c, c["intermediate_size"])  # BertOutput has the same shape

    def forward(self, hidden_states, attention_mask):
        attention_output = self.attention(hidden_states, attention_mask)
        return self.output(self.intermediate(attention_output), attention_output)


class BertEncoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(c) for _ in range(c["num_hidden_layers"])])

    def forward(self, hidden_states, attention_mask):
        for layer in self.layer:
            hidden_states = layer(hidden_states, attention_mask)
        return hidden_states


class BertModel(nn.Module):  # add_pooling_layer=False, as BertForMaskedLM builds it
    def __init__(self, c):
        super().__init__()
        self.embeddings = BertEmbeddings(c)
        self.encoder = BertEncoder(c)

    def forward(self, input_ids, attention_mask=None):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        dtype = self.embeddings.word_embeddings.weight.dtype
        extended = attention_mask[:, None, None, :].to(dtype)
        extended = (1.0 - extended) * torch.finfo(dtype).min
        return self.encoder(self.embeddings(input_ids), extended)


class BertPredictionHeadTransform(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["hidden_size"])
        self.act = act_fn(c["hidden_act"])
        self.LayerNorm = LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])

    def forward(self, x):
        return self.LayerNorm(self.act(self.dense(x)))


class BertLMPredictionHead(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.transform = BertPredictionHeadTransform(c)
        self.decoder = nn.Linear(c["hidden_size"], c["vocab_size"], bias=False)
        self.bias = nn.Parameter(torch.zeros(c["vocab_size"]))
        self.decoder.bias = self.bias

    def forward(self, x):
        return self.decoder(self.transform(x))


class BertOnlyMLMHead(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.predictions = BertLMPredictionHead(c)

    def forward(self, x):
        return self.predictions(x)


class BertForMaskedLM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.config = c
        self.bert = BertModel(c)
        self.cls = BertOnlyMLMHead(c)
        self.apply(self._init_weights)
        self.cls.predictions.decoder.weight = self.bert.embeddings.word_embeddings.weight  # tie_weights()

    def _init_weights(self, module):
        std = self.config["initializer_range"]
        if isinstance(module, nn.Linear):
            module.weight.data.normal_(mean=0.0, std=std)
            if module.bias is not None:
                module.bias.data.zero_()
        elif isinstance(module, nn.Embedding):
            module.weight.data.normal_(mean=0.0, std=std)
            if module.padding_idx is not None:
                module.weight.data[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            module.bias.data.zero_()
            module.weight.data.fill_(1.0)

    def forward(self, input_ids, attention_mask=None, labels=None, reduction="mean", sparse_head=False):
        hidden = self.bert(input_ids, attention_mask)
        if sparse_head and labels is not None:
            # The best eager recipe (NVIDIA's / MLPerf's): the head and loss on the masked positions only.
            picked = labels.view(-1) != -100
            rows = hidden.view(-1, hidden.size(-1))[picked]
            loss_fct = nn.CrossEntropyLoss(reduction=reduction)
            return None, loss_fct(self.cls(rows), labels.view(-1)[picked])
        prediction_scores = self.cls(hidden)
        if labels is None:
            return prediction_scores, None
        loss_fct = nn.CrossEntropyLoss(reduction=reduction)  # ignore_index -100; autocast runs it in fp32
        loss = loss_fct(prediction_scores.view(-1, self.config["vocab_size"]), labels.view(-1))
        return prediction_scores, loss


# --- modes ---
def read_int64(path, shape):
    with open(path, "rb") as f:
        data = bytearray(f.read())
    return torch.frombuffer(data, dtype=torch.int64).reshape(shape).clone()


def reference(args):
    with open(os.path.join(args.dir, "manifest.json")) as f:
        manifest = json.load(f)
    c = manifest["config"]
    B, L = manifest["batch"]
    torch.set_num_threads(1)
    model = BertForMaskedLM(c).eval()
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, shape in manifest["tensors"].items():
            with open(os.path.join(args.dir, name + ".bin"), "rb") as f:
                t = torch.frombuffer(bytearray(f.read()), dtype=torch.float32).reshape(shape)
            params[name].copy_(t)
    ids = read_int64(os.path.join(args.dir, "input_ids.bin"), (B, L))
    mask = read_int64(os.path.join(args.dir, "attention_mask.bin"), (B, L))
    labels = read_int64(os.path.join(args.dir, "labels.bin"), (B, L))
    logits, loss = model(ids, mask, labels, reduction="sum")
    loss.backward()
    logits.detach().contiguous().numpy().tofile(os.path.join(args.dir, "logits.bin"))
    loss.detach().reshape(1).numpy().tofile(os.path.join(args.dir, "loss_sum.bin"))
    for name, p in model.named_parameters():
        p.grad.contiguous().numpy().tofile(os.path.join(args.dir, "grad." + name + ".bin"))


def openblas_info():
    import ctypes
    try:
        lib = ctypes.CDLL("libopenblas.so.0")
        lib.openblas_get_config.restype = ctypes.c_char_p
        lib.openblas_get_corename.restype = ctypes.c_char_p
        return lib.openblas_get_config().decode() + " core " + lib.openblas_get_corename().decode()
    except OSError:
        return "not loaded"


def bench(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    c = preset_config(args.preset, args.vocab)
    B, L = args.batch, args.seq_len
    ids = read_int64(os.path.join(args.batch_dir, "input_ids.bin"), (B, L))
    labels = read_int64(os.path.join(args.batch_dir, "labels.bin"), (B, L))
    mask = torch.ones_like(ids)
    model = BertForMaskedLM(c).train()
    # HF Trainer: AdamW with weight decay except biases and LayerNorm weights, clipping at 1.0.
    decay = [p for n, p in model.named_parameters() if not ("bias" in n or "LayerNorm.weight" in n)]
    no_decay = [p for n, p in model.named_parameters() if "bias" in n or "LayerNorm.weight" in n]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, eps=1e-8)
    bf16 = args.precision == "bf16"
    losses, times = [], []
    for step in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            _, loss = model(ids, mask, labels, sparse_head=args.sparse_head)
        loss.backward()
        if args.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
        opt.step()
        loss_value = loss.item()
        times.append(time.perf_counter() - t0)
        losses.append(loss_value)
    timed = times[args.warmup:]
    seconds = sum(timed)
    print(json.dumps({
        "impl": "python_eager_hf_style", "torch": torch.__version__, "preset": args.preset,
        "precision": args.precision, "batch": B, "seq_len": L, "threads": torch.get_num_threads(),
        "steps": args.steps, "step_seconds": timed, "tokens_per_second": B * L * args.steps / seconds,
        "loss_first": losses[0], "loss_last": losses[-1], "blas": openblas_info(),
        "masked_fraction": float((labels != -100).float().mean()),
    }))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    r = sub.add_parser("reference")
    r.add_argument("--dir", required=True)
    b = sub.add_parser("bench")
    b.add_argument("--preset", default="mini")
    b.add_argument("--vocab", type=int, default=30522)
    b.add_argument("--batch", type=int, default=32)
    b.add_argument("--seq_len", type=int, default=128)
    b.add_argument("--batch_dir", required=True)
    b.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    b.add_argument("--threads", type=int, default=2)
    b.add_argument("--steps", type=int, default=5)
    b.add_argument("--warmup", type=int, default=2)
    b.add_argument("--lr", type=float, default=1e-4)
    b.add_argument("--weight_decay", type=float, default=0.01)
    b.add_argument("--max_grad_norm", type=float, default=1.0)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--sparse_head", action="store_true", help="head and loss on the masked positions only")
    args = ap.parse_args()
    reference(args) if args.mode == "reference" else bench(args)


if __name__ == "__main__":
    sys.exit(main())
