// Sequence-classification inputs from Hugging Face tokenizers (npm "tokenizers", the Rust library
// behind BertTokenizerFast), set up as BertTokenizerFast builds itself from a vocab.txt: the BERT
// normalizer and pre-tokenizer, WordPiece, the template post-processor
// "[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1" and truncation to max_length with the default strategy
// (longest_first), i.e. tokenizer(a, b, truncation=True, max_length=L).
// Usage:
//   node pairs.mjs make --corpus TEXT --output PAIRS.jsonl [--count N]
//       N real pairs {"a", "b"} from the sentences of TEXT (one a line), of mixed shapes: neighbouring
//       sentences, a sentence and the next four, four and one, a sentence twice (equal lengths), three
//       words and the next sentence
//   node pairs.mjs encode --vocab V --input PAIRS.jsonl --max-length L --output IDS [--single] [--cased]
//       one line per pair: input ids, a tab, token type ids; --single encodes "a" alone. Prints one
//       JSON line of statistics: inputs truncated, and how many pairs would be cut differently by
//       tokenizers <= 0.22 (longest_first on the full lengths: 0.23 compares lengths counted only up
//       to the word that reaches max_length) and by the slow Python tokenizer (one token at a time
//       from the longer, the second on ties)
import fs from 'fs';
import path from 'path';
import { createRequire } from 'module';
import { fileURLToPath } from 'url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const modules = process.env.TOKENIZERS_NODE_MODULES || path.join(here, 'node_modules');
const tk = require(path.join(modules, 'tokenizers'));

const SPECIALS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];

function args(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i].slice(2);
    if (key === 'single' || key === 'cased') out[key] = true;
    else out[key] = argv[++i];
  }
  return out;
}

async function bertTokenizer(vocabPath, cased) {
  const model = await tk.WordPiece.fromFile(vocabPath, { unkToken: '[UNK]', continuingSubwordPrefix: '##', maxInputCharsPerWord: 100 });
  const tok = new tk.Tokenizer(model);
  tok.setNormalizer(tk.bertNormalizer({ cleanText: true, handleChineseChars: true, stripAccents: !cased, lowercase: !cased }));
  tok.setPreTokenizer(tk.bertPreTokenizer());
  tok.addSpecialTokens(SPECIALS.filter((s) => tok.tokenToId(s) !== null && tok.tokenToId(s) !== undefined));
  const cls = tok.tokenToId('[CLS]');
  const sep = tok.tokenToId('[SEP]');
  tok.setPostProcessor(tk.templateProcessing('[CLS]:0 $A:0 [SEP]:0', '[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1',
    [['[CLS]', cls], ['[SEP]', sep]]));
  return tok;
}

function makePairs(a) {
  const lines = fs.readFileSync(a.corpus, 'utf8').split('\n').map((l) => l.trim()).filter(Boolean);
  const count = parseInt(a.count || '400', 10);
  const step = Math.max(1, Math.floor((lines.length - 8) / count));
  const out = [];
  for (let k = 0; k < count; k++) {
    const i = k * step;
    const s = (j, n = 1) => lines.slice(i + j, i + j + n).join(' ');
    const shapes = [
      [s(0), s(1)],
      [s(0), s(1, 4)],
      [s(0, 4), s(4)],
      [s(0), s(0)],
      [s(0).split(' ').slice(0, 3).join(' '), s(1)],
    ];
    const [x, y] = shapes[k % shapes.length];
    out.push(JSON.stringify({ a: x, b: y }));
  }
  fs.writeFileSync(a.output, out.join('\n') + '\n');
}

// Kept lengths under tokenizers <= 0.22's truncate_encodings on the full lengths.
function legacyRule(n1, n2, budget) {
  if (n1 + n2 <= budget) return [n1, n2];
  const firstShorter = n1 <= n2;
  const shorter = firstShorter ? n1 : n2;
  const [s, l] = 2 * shorter <= budget ? [shorter, budget - shorter] : [Math.floor(budget / 2), Math.ceil(budget / 2)];
  return firstShorter ? [s, l] : [l, s];
}

// Kept lengths under the slow tokenizer's longest_first: one token at a time from the longer
// sequence, from the second on ties.
function slowRule(n1, n2, budget) {
  while (n1 + n2 > budget) {
    if (n1 > n2) n1--;
    else n2--;
  }
  return [n1, n2];
}

async function encode(a) {
  const tok = await bertTokenizer(a.vocab, !!a.cased);
  const maxLength = parseInt(a['max-length'], 10);
  const pairs = fs.readFileSync(a.input, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const lines = [];
  let truncated = 0;
  let slowDiffers = 0;
  let legacyDiffers = 0;
  for (const p of pairs) {
    tok.disableTruncation();
    const full = a.single ? await tok.encode(p.a) : await tok.encode(p.a, p.b);
    tok.setTruncation(maxLength);
    const e = a.single ? await tok.encode(p.a) : await tok.encode(p.a, p.b);
    lines.push(e.getIds().join(' ') + '\t' + e.getTypeIds().join(' '));
    if (full.getIds().length > e.getIds().length) truncated++;
    if (!a.single) {
      const types = full.getTypeIds();
      const n2 = types.filter((t) => t === 1).length - 1;  // minus its [SEP]
      const n1 = types.length - 3 - n2;
      const kept2 = e.getTypeIds().filter((t) => t === 1).length - 1;
      const kept1 = e.getIds().length - 3 - kept2;
      const [s1, s2] = slowRule(n1, n2, Math.max(0, maxLength - 3));
      if (s1 !== kept1 || s2 !== kept2) slowDiffers++;
      const [l1, l2] = legacyRule(n1, n2, Math.max(0, maxLength - 3));
      if (l1 !== kept1 || l2 !== kept2) legacyDiffers++;
    }
  }
  fs.writeFileSync(a.output, lines.join('\n') + '\n');
  console.log(JSON.stringify({ max_length: maxLength, single: !!a.single, pairs: pairs.length, truncated,
    tokenizers_0_22_would_differ: a.single ? null : legacyDiffers, slow_rule_would_differ: a.single ? null : slowDiffers }));
}

async function main() {
  const [cmd, ...rest] = process.argv.slice(2);
  const a = args(rest);
  if (cmd === 'make') makePairs(a);
  else if (cmd === 'encode') await encode(a);
  else {
    console.error('usage: node pairs.mjs make|encode ... (see the header of this file)');
    process.exit(2);
  }
}

main().catch((e) => {
  console.error(`pairs.mjs: error: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
