#!/usr/bin/python3
"""The Python baseline for fine-tuning: BertForSequenceClassification as Hugging Face's modeling_bert
computes it and as run_glue / run_classification train it today (eager PyTorch: dense attention with
HF's additive padding mask, nn.Dropout, nn.LayerNorm, pooler tanh(dense(hidden[:, 0])), classifier
Linear(hidden, num_labels), the loss chosen by problem_type, the Trainer's gradient clipping and
torch.optim.AdamW, optional torch.autocast("cpu", dtype=torch.bfloat16)). Written in plain PyTorch
because Debian's python3-torch (1.13) has no transformers; the encoder is bench/baseline_step.py's.
Run it with /usr/bin/python3.

Side-by-side protocol (as bench_step drives baseline_step.py; for bench_classification):
  1. The harness fixes the batch, either by writing a batch directory itself or by running
       baseline_classification.py make_batch --out DIR --seed S --batch B --seq_len L --num_labels N
           [--vocab 30522] [--min_len L/2] [--pairs] [--problem_type P]
     and reading that directory back. Both sides then train on exactly the same token ids, token
     types, padding and labels.
  2. It alternates its own timed run with
       OMP_NUM_THREADS=T OPENBLAS_NUM_THREADS=T /usr/bin/python3 baseline_classification.py bench
           --preset mini --batch_dir DIR --batch B --seq_len L --num_labels N [--problem_type P]
           [--vocab 30522] [--precision fp32|bf16] [--threads T] [--steps 5] [--warmup 2]
           [--lr 5e-5] [--weight_decay 0.0] [--max_grad_norm 1.0] [--seed 0]
     (or --seed S [--min_len M] [--pairs] instead of --batch_dir: the same batch make_batch writes),
     and takes the last stdout line that starts with "{" as the baseline's result.
  The bench step: zero_grad(set_to_none) -> forward + loss (under autocast for bf16) -> backward ->
  clip_grad_norm_(max_grad_norm, skipped if <= 0) -> AdamW step (weight decay except on biases and
  LayerNorm weights, eps 1e-8, constant lr) -> loss.item(). Train mode (dropout on), random init
  (HF's _init_weights, std initializer_range); --seed seeds torch (init, dropout) as well as a
  generated batch. The first --warmup steps are not timed. Labels default to 2 (HF's default).

Batch directory (raw little-endian, row-major, no header; B = --batch, L = --seq_len):
  input_ids.bin       int64 [B, L]   padded with pad id 0
  attention_mask.bin  int64 [B, L]   1 = token, 0 = padding (optional: all ones)
  token_type_ids.bin  int64 [B, L]   0 = sentence A / padding, 1 = sentence B (optional: all zeros)
  labels.bin          single_label_classification: int64 [B]; regression: float32 [B];
                      multi_label_classification: float32 [B, num_labels] of 0/1
problem_type, when not given, follows BertForSequenceClassification: regression if num_labels == 1,
else single_label_classification (make_batch writes int64 labels for it).

make_batch / --seed generator (reproducible in C++): a 64-bit LCG, s <- s * 6364136223846793005 +
1442695040888963407 (mod 2^64), each draw returns s >> 33, s starting at --seed. For row r = 0..B-1:
its length n = L for row 0 (the batch is padded to its longest row, as DataCollatorWithPadding does),
else n = min_len + draw % (L - min_len + 1); then one draw per position j < n gives the id
1000 + draw % (vocab - 1000); position 0 becomes [CLS] 101 and n-1 [SEP] 102; with --pairs, position
n // 2 also becomes [SEP] and positions n // 2 + 1 .. n - 1 get token type 1. Then the row's label:
single-label draw % num_labels; multi-label one draw per class, draw % 2; regression
(draw % 5001) / 1000 (0..5, like STS-B). Positions >= n hold id 0, mask 0, type 0.

Output of bench: one JSON object on one line:
  {"impl": "python_eager_hf_style", "torch", "preset", "precision", "batch", "seq_len", "vocab",
   "num_labels", "problem_type", "threads", "steps", "warmup", "lr", "weight_decay", "max_grad_norm",
   "batch_source": "dir" | "seed", "real_tokens", "padding_fraction",
   "step_seconds": [timed steps], "samples_per_second", "tokens_per_second" (B * L per second,
   padding included), "real_tokens_per_second" (attention_mask ones per second),
   "losses": [every step, warmup included], "loss_first", "loss_last", "blas"}
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn as nn

import baseline_step as hf  # the encoder classes, presets and helpers shared with the MLM baseline

PROBLEM_TYPES = ("regression", "single_label_classification", "multi_label_classification")


# --- modeling_bert, the parts BertForSequenceClassification adds (names as in transformers) ---
class BertEmbeddings(hf.BertEmbeddings):
    def forward(self, input_ids, token_type_ids):
        position_ids = self.position_ids[:, :input_ids.size(1)]
        embeddings = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        embeddings = embeddings + self.position_embeddings(position_ids)
        return self.dropout(self.LayerNorm(embeddings))


class BertPooler(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["hidden_size"])
        self.activation = nn.Tanh()

    def forward(self, hidden_states):
        return self.activation(self.dense(hidden_states[:, 0]))


class BertModel(nn.Module):  # add_pooling_layer=True
    def __init__(self, c):
        super().__init__()
        self.embeddings = BertEmbeddings(c)
        self.encoder = hf.BertEncoder(c)
        self.pooler = BertPooler(c)

    def forward(self, input_ids, token_type_ids, attention_mask):
        dtype = self.embeddings.word_embeddings.weight.dtype
        extended = (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min
        return self.pooler(self.encoder(self.embeddings(input_ids, token_type_ids), extended))


class BertForSequenceClassification(nn.Module):
    def __init__(self, c, num_labels, problem_type=None):
        super().__init__()
        self.config, self.num_labels, self.problem_type = c, num_labels, problem_type
        self.bert = BertModel(c)
        p = c.get("classifier_dropout")
        self.dropout = nn.Dropout(p if p is not None else c["hidden_dropout_prob"])
        self.classifier = nn.Linear(c["hidden_size"], num_labels)
        self.apply(self._init_weights)

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

    def forward(self, input_ids, token_type_ids, attention_mask, labels=None):
        logits = self.classifier(self.dropout(self.bert(input_ids, token_type_ids, attention_mask)))
        if labels is None:
            return logits, None
        if self.problem_type is None:  # transformers infers it once, from the first labels it sees
            if self.num_labels == 1:
                self.problem_type = "regression"
            elif labels.dtype in (torch.long, torch.int):
                self.problem_type = "single_label_classification"
            else:
                self.problem_type = "multi_label_classification"
        if self.problem_type == "regression":
            loss_fct = nn.MSELoss()
            loss = loss_fct(logits.squeeze(), labels.squeeze()) if self.num_labels == 1 else loss_fct(logits, labels)
        elif self.problem_type == "single_label_classification":
            loss = nn.CrossEntropyLoss()(logits.view(-1, self.num_labels), labels.view(-1))
        else:
            loss = nn.BCEWithLogitsLoss()(logits, labels)
        return logits, loss


# --- the batch ---
class Lcg:
    def __init__(self, seed):
        self.s = seed % 2**64

    def draw(self):
        self.s = (self.s * 6364136223846793005 + 1442695040888963407) % 2**64
        return self.s >> 33


def default_problem_type(num_labels, problem_type):
    return problem_type or ("regression" if num_labels == 1 else "single_label_classification")


def make_batch(seed, B, L, vocab, num_labels, problem_type, min_len, pairs):
    """The documented generator: {"input_ids", "attention_mask", "token_type_ids", "labels"}."""
    rng = Lcg(seed)
    ids = torch.zeros(B, L, dtype=torch.int64)
    mask, types = torch.zeros_like(ids), torch.zeros_like(ids)
    labels = []
    for r in range(B):
        n = L if r == 0 else min_len + rng.draw() % (L - min_len + 1)
        ids[r, :n] = torch.tensor([1000 + rng.draw() % (vocab - 1000) for _ in range(n)])
        ids[r, 0], ids[r, n - 1] = 101, 102
        mask[r, :n] = 1
        if pairs:
            ids[r, n // 2] = 102
            types[r, n // 2 + 1:n] = 1
        if problem_type == "single_label_classification":
            labels.append(rng.draw() % num_labels)
        elif problem_type == "multi_label_classification":
            labels.append([float(rng.draw() % 2) for _ in range(num_labels)])
        else:
            labels.append((rng.draw() % 5001) / 1000.0)
    dtype = torch.int64 if problem_type == "single_label_classification" else torch.float32
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types,
            "labels": torch.tensor(labels, dtype=dtype)}


def label_spec(problem_type, B, num_labels):
    if problem_type == "single_label_classification":
        return torch.int64, (B,)
    return torch.float32, ((B, num_labels) if problem_type == "multi_label_classification" else (B,))


def usage_error(message):
    print(f"baseline_classification: {message}", file=sys.stderr)
    sys.exit(2)


def read_raw(path, dtype, shape):
    if not os.path.isfile(path):
        usage_error(f"{path} does not exist (see the batch directory format in --help)")
    with open(path, "rb") as f:
        data = bytearray(f.read())
    want = torch.Size(shape).numel() * torch.tensor([], dtype=dtype).element_size()
    if len(data) != want:
        usage_error(f"{path} has {len(data)} bytes, expected {want} ({dtype} {list(shape)})")
    return torch.frombuffer(data, dtype=dtype).reshape(shape).clone()


def read_batch(d, B, L, num_labels, problem_type):
    ids = read_raw(os.path.join(d, "input_ids.bin"), torch.int64, (B, L))
    optional = {"attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids)}
    batch = {"input_ids": ids}
    for name, default in optional.items():
        path = os.path.join(d, name + ".bin")
        batch[name] = read_raw(path, torch.int64, (B, L)) if os.path.exists(path) else default
    batch["labels"] = read_raw(os.path.join(d, "labels.bin"), *label_spec(problem_type, B, num_labels))
    return batch


def write_batch(d, batch):
    os.makedirs(d, exist_ok=True)
    for name, t in batch.items():
        t.contiguous().numpy().tofile(os.path.join(d, name + ".bin"))


# --- modes ---
def bench_batch(args, problem_type):
    if args.batch_dir:
        return read_batch(args.batch_dir, args.batch, args.seq_len, args.num_labels, problem_type), "dir"
    return make_batch(args.seed, args.batch, args.seq_len, args.vocab, args.num_labels, problem_type,
                      args.min_len, args.pairs), "seed"


def bench(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    problem_type = default_problem_type(args.num_labels, args.problem_type)
    batch, source = bench_batch(args, problem_type)
    B, L = args.batch, args.seq_len
    c = hf.preset_config(args.preset, args.vocab)
    model = BertForSequenceClassification(c, args.num_labels, problem_type).train()
    # HF Trainer: AdamW with weight decay except biases and LayerNorm weights, clipping at max_grad_norm.
    decay = [p for n, p in model.named_parameters() if not ("bias" in n or "LayerNorm.weight" in n)]
    no_decay = [p for n, p in model.named_parameters() if "bias" in n or "LayerNorm.weight" in n]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, eps=1e-8)
    bf16 = args.precision == "bf16"
    losses, times = [], []
    for _ in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            _, loss = model(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"], batch["labels"])
        loss.backward()
        if args.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
        opt.step()
        losses.append(loss.item())
        times.append(time.perf_counter() - t0)
    timed = times[args.warmup:]
    seconds = sum(timed)
    real = int(batch["attention_mask"].sum())
    print(json.dumps({
        "impl": "python_eager_hf_style", "torch": torch.__version__, "preset": args.preset,
        "precision": args.precision, "batch": B, "seq_len": L, "vocab": args.vocab, "num_labels": args.num_labels,
        "problem_type": problem_type, "threads": torch.get_num_threads(), "steps": args.steps,
        "warmup": args.warmup, "lr": args.lr, "weight_decay": args.weight_decay, "max_grad_norm": args.max_grad_norm,
        "batch_source": source, "real_tokens": real, "padding_fraction": 1.0 - real / (B * L),
        "step_seconds": timed, "samples_per_second": B * args.steps / seconds,
        "tokens_per_second": B * L * args.steps / seconds, "real_tokens_per_second": real * args.steps / seconds,
        "losses": losses, "loss_first": losses[0], "loss_last": losses[-1], "blas": hf.openblas_info(),
    }))


def add_batch_args(p, need_dir):
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seq_len", type=int, default=128)
    p.add_argument("--vocab", type=int, default=30522)
    p.add_argument("--num_labels", type=int, default=2)
    p.add_argument("--problem_type", choices=PROBLEM_TYPES)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--min_len", type=int, help="shortest row of a generated batch (default seq_len // 2)")
    p.add_argument("--pairs", action="store_true", help="generated rows are sentence pairs (token types 1)")
    if need_dir:
        p.add_argument("--out", required=True)
    else:
        p.add_argument("--batch_dir")


def check_args(ap, args):
    if args.min_len is None:
        args.min_len = args.seq_len // 2
    if args.batch <= 0 or args.seq_len < 4 or args.num_labels <= 0 or args.vocab <= 1000:
        ap.error("batch and num_labels must be > 0, seq_len >= 4, vocab > 1000")
    if not 4 <= args.min_len <= args.seq_len:
        ap.error(f"--min_len {args.min_len} must be in [4, seq_len]")
    if args.problem_type == "single_label_classification" and args.num_labels < 2:
        ap.error("single_label_classification needs --num_labels >= 2")
    if args.mode == "bench" and (args.steps <= 0 or args.warmup < 0 or args.threads <= 0):
        ap.error("steps and threads must be > 0, warmup >= 0")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    m = sub.add_parser("make_batch")
    add_batch_args(m, need_dir=True)
    b = sub.add_parser("bench")
    add_batch_args(b, need_dir=False)
    b.add_argument("--preset", default="mini")
    b.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    b.add_argument("--threads", type=int, default=2)
    b.add_argument("--steps", type=int, default=5)
    b.add_argument("--warmup", type=int, default=2)
    b.add_argument("--lr", type=float, default=5e-5)
    b.add_argument("--weight_decay", type=float, default=0.0)
    b.add_argument("--max_grad_norm", type=float, default=1.0)
    args = ap.parse_args()
    check_args(ap, args)
    if args.mode == "bench":
        if args.preset.replace("bert-", "") not in hf.PRESETS:
            ap.error(f"--preset {args.preset}; valid: {', '.join(hf.PRESETS)}")
        return bench(args)
    problem_type = default_problem_type(args.num_labels, args.problem_type)
    write_batch(args.out, make_batch(args.seed, args.batch, args.seq_len, args.vocab, args.num_labels, problem_type,
                                     args.min_len, args.pairs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
