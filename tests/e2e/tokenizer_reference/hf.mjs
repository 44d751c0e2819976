// Hugging Face tokenizers (npm "tokenizers", the Rust library behind BertTokenizerFast) set up as
// BertTokenizerFast builds itself from a vocab.txt, for reference comparisons.
// Usage:
//   node hf.mjs encode --vocab V --input TEXT --output IDS [--cased]
//       one line of ids per non-blank input line (blank = only White_Space), like prepare_data encode
//   node hf.mjs train --input TEXT[,TEXT...] --output VOCAB [--cased]
//       tokenizers' WordPieceTrainer with its defaults (vocab 30000, min_frequency 0, no alphabet
//       limit); the five BERT special tokens are put first
//   node hf.mjs bench --vocab V --input TEXT [--cased] [--batch N]
//       single-process encode speed as one JSON line (set RAYON_NUM_THREADS / TOKENIZERS_PARALLELISM)
//   node hf.mjs hard-cases --output TEXT
//       lines of hard cases (accents, CJK, emoji, controls, ill-formed UTF-8, long words, marks, ...)
//   node hf.mjs sweep --output TEXT
//       one line "x<c>x" per code point c (all but surrogates and \n)
//   node hf.mjs char-vocab --vocab V --output V2
//       V plus every code point c as "c" and "##c", so that ids show each character's fate
//   node hf.mjs compare --expected HF_IDS --actual OUR_IDS --vocab V [--sweep] [--label NAME]
//       line-by-line agreement as one JSON line; exit 1 on any difference, or with --sweep (lines of
//       the sweep command) on differences beyond the Unicode-version skew allowed (see SWEEP_*)
// The module is looked up in TOKENIZERS_NODE_MODULES, then beside this script (node_modules/).
import fs from 'fs';
import path from 'path';
import { createRequire } from 'module';
import { fileURLToPath } from 'url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const modules = process.env.TOKENIZERS_NODE_MODULES || path.join(here, 'node_modules');
const tk = require(path.join(modules, 'tokenizers'));

const SPECIALS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];
// Rust char::is_whitespace = Unicode White_Space.
const BLANK = /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$/u;

function args(argv) {
  const out = { _: [] };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i].startsWith('--')) {
      const key = argv[i].slice(2);
      if (key === 'cased' || key === 'sweep') out[key] = true;
      else out[key] = argv[++i];
    } else out._.push(argv[i]);
  }
  return out;
}

function normalizer(cased) {
  return tk.bertNormalizer({ cleanText: true, handleChineseChars: true, stripAccents: !cased, lowercase: !cased });
}

async function bertTokenizer(vocabPath, cased) {
  const model = await tk.WordPiece.fromFile(vocabPath, { unkToken: '[UNK]', continuingSubwordPrefix: '##', maxInputCharsPerWord: 100 });
  const tok = new tk.Tokenizer(model);
  tok.setNormalizer(normalizer(cased));
  tok.setPreTokenizer(tk.bertPreTokenizer());
  // BertTokenizerFast registers its special tokens as added tokens: matched in the raw text.
  const present = SPECIALS.filter((s) => tok.tokenToId(s) !== null && tok.tokenToId(s) !== undefined);
  tok.addSpecialTokens(present);
  return tok;
}

// Lines of a file split on '\n' at the byte level, decoded as browsers/Node do (U+FFFD for
// ill-formed sequences, maximal subparts).
function readLines(file) {
  const buf = fs.readFileSync(file);
  const dec = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
  const lines = [];
  let start = 0;
  for (;;) {
    const nl = buf.indexOf(10, start);
    const end = nl < 0 ? buf.length : nl;
    if (nl < 0 && start >= buf.length) break;
    lines.push(dec.decode(buf.subarray(start, end)));
    if (nl < 0) break;
    start = nl + 1;
  }
  return lines;
}

async function encodeLines(tok, lines, batch) {
  const out = [];
  for (let i = 0; i < lines.length; i += batch) {
    const encs = await tok.encodeBatch(lines.slice(i, i + batch), { addSpecialTokens: false });
    for (const e of encs) out.push(e.getIds());
  }
  return out;
}

// Hard cases, one per line; bytes that are not UTF-8 are written raw.
function hardCases() {
  const L = [
    'Héllo Café naïve façade Ångström résumé',
    'e\u0301 a\u0308\u0301 o\u0302\u0323 cafe\u0301s',
    'x\u{1D16D}\u{1D165}y x\u{1D165}\u0301\u{1D16D}y x\u{1D16D}\u034F\u{1D165}y x\u{1D16D}\u200D\u{1D165}y',
    '中文字符 mixed中文text 野口里佳 Noguchi \uF900\uFA0E \u{20000}\u{2B820}\u{2B920} \u3400x',
    'emoji 😀👍🏽 👨‍👩‍👧 ❤️ 🇫🇷 ©®™',
    'ctl\u0001a\u007Fb\u000Bc\u000Cd\u0085e\u200Df\uFEFFg\u00ADh\uE001i\u{F0000}j\u0000k\uFFFDl',
    'tab\tsep\rcr\u00A0nbsp\u3000ideo\u2028ls\u2029ps\u1680ogham\u202Fnnbsp',
    'punct: Hello, world!... (test) [x] {y} ¿Qué? ¡Olé! «quote» — dash – en ‘single’ “double” … ・ § ¶ † ‰ ‽',
    'ascii !"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~ done',
    'math + = < > ^ ` | ~ $ ¢ £ ¥ € ° ± × ÷ ∑ √ ∞ ≠ ≤',
    'İstanbul ISTANBUL ıi ß ẞ ǅ ǈ ﬁ ﬀ Ⅻ ① ＡＢＣ ｶﾞ',
    'ΟΔΥΣΣΕΥΣ Σίσυφος ἄλφα ὦ ᾅ Ωmega',
    'ПРИВЕТ мир Ёлка й Й',
    '한국어 텍스트 가나다 ㄱㄴㄷ',
    'ガギグ パピプ ひらがな カタカナ ｱｲｳ',
    'العربية مَرْحَبًا עִבְרִית हिन्दी தமிழ் ไทย',
    'tiếng Việt Phở đường',
    'a'.repeat(100),
    'b'.repeat(101),
    'é'.repeat(100) + ' ' + 'é'.repeat(101),
    'e\u0301'.repeat(60),
    '中'.repeat(150),
    '[MASK] [mask] a[SEP]b [CLS][SEP] [UNK]x [MASK [[MASK]] [PAD]',
    'Paris is the [MASK] of France.',
    '3.14 1,000 2023-01-01 10:30 $5.00 50% #hashtag @user user@example.com http://x.y/z?q=1',
    "don't won't it's rock'n'roll O'Neill",
    '\u0001\u0002\u007F',
    '   leading and trailing   ',
    'unbelievably antidisestablishmentarianism supercalifragilisticexpialidocious',
    'ǰ ǲ ᾈ ῼ K Å Ω',
    '\u0345 \u0301alone \u20DD enclosed a\u20DDb',
  ];
  const bytes = [];
  for (const l of L) bytes.push(Buffer.from(l + '\n', 'utf8'));
  // Ill-formed UTF-8: stray bytes, truncated sequences, overlongs, surrogates, > U+10FFFF.
  const raw = [
    [0x61, 0xff, 0x62, 0x20, 0x63, 0xc3, 0x20, 0x64, 0xe2, 0x82, 0x61],
    [0xc0, 0xaf, 0x61, 0x20, 0xed, 0xa0, 0x80, 0x62, 0x20, 0xf4, 0x90, 0x80, 0x80, 0x63],
    [0xf0, 0x9f, 0x98, 0x61, 0x20, 0x80, 0x80, 0x65, 0xcc, 0x81, 0x20, 0xc3, 0xa9, 0xff, 0xc3, 0xa9],
    [0xe0, 0x80, 0x80, 0x61, 0xf8, 0x88, 0x80, 0x80, 0x80, 0x62, 0x5b, 0x4d, 0x41, 0x53, 0x4b, 0xff, 0x5d],
    [0xff, 0xfe, 0xfd],
  ];
  for (const r of raw) bytes.push(Buffer.from(r.concat([0x0a])));
  bytes.push(Buffer.from('\n  \t \n\u3000\n', 'utf8'));  // blank lines: no output
  bytes.push(Buffer.from('last line without newline', 'utf8'));
  return Buffer.concat(bytes);
}

// The sweep may differ only where the Unicode versions of the two sides disagree: tokenizers takes
// categories from the unicode_categories crate (Unicode 8.0) and case from Rust's std (newer), we
// take both from utf8proc. Characters of the blocks below are stable since long before Unicode 8 and
// must agree; so must all but SWEEP_BUDGET code points overall.
const SWEEP_BUDGET = 1000;
const SWEEP_PROTECTED = [
  [0x0000, 0x05ff, 'Latin, Greek, Cyrillic, Armenian, Hebrew'], [0x1e00, 0x1fff, 'Latin/Greek extended'],
  [0x2000, 0x206f, 'General Punctuation'], [0x20a0, 0x20cf, 'Currency'], [0x3000, 0x30ff, 'CJK symbols, kana'],
  [0x3400, 0x4dbf, 'CJK Ext A'], [0x4e00, 0x9fff, 'CJK'], [0xac00, 0xd7a3, 'Hangul'], [0xf900, 0xfaff, 'CJK compat'],
  [0xff00, 0xffef, 'Halfwidth/Fullwidth'], [0x1f300, 0x1f64f, 'Emoji'],
];
function sweepCodePoint(line) {
  // line k of the sweep holds the k-th code point, skipping surrogates and \n
  let cp = line + 1;  // skips U+000A
  if (line < 10) cp = line;
  if (cp >= 0xd800) cp += 0x800;
  return cp;
}

function compare(a) {
  const read = (f) => {
    const t = fs.readFileSync(f, 'utf8').split('\n');
    if (t.length && t[t.length - 1] === '') t.pop();
    return t;
  };
  const exp = read(a.expected);
  const act = read(a.actual);
  const vocab = a.vocab ? read(a.vocab) : null;
  const show = (l) => (vocab ? l.split(' ').filter(Boolean).map((i) => vocab[+i]).join(' ') : l);
  const n = Math.max(exp.length, act.length);
  const diffs = [];
  for (let i = 0; i < n; i++) if (exp[i] !== act[i]) diffs.push(i);
  const summary = { compare: a.label || a.actual, lines: n, expected_lines: exp.length, actual_lines: act.length,
    identical: n - diffs.length, differing: diffs.length };
  let ok = diffs.length === 0 && exp.length === act.length;
  if (a.sweep) {
    const bad = diffs.map(sweepCodePoint).filter((cp) => SWEEP_PROTECTED.some(([lo, hi]) => cp >= lo && cp <= hi));
    summary.budget = SWEEP_BUDGET;
    summary.protected_differing = bad.length;
    ok = exp.length === act.length && diffs.length <= SWEEP_BUDGET && bad.length === 0;
    summary.examples = (bad.length ? bad : diffs.map(sweepCodePoint)).slice(0, 8).map((cp) => 'U+' + cp.toString(16).toUpperCase());
  }
  console.log(JSON.stringify(summary));
  if (!ok) {
    for (const i of diffs.slice(0, 5)) {
      console.error(`line ${i + 1}${a.sweep ? ' (U+' + sweepCodePoint(i).toString(16).toUpperCase() + ')' : ''}:`);
      console.error(`  hf : ${show(exp[i] ?? '(missing)')}`);
      console.error(`  ours: ${show(act[i] ?? '(missing)')}`);
    }
  }
  return ok;
}

async function main() {
  const [cmd, ...rest] = process.argv.slice(2);
  const a = args(rest);
  if (cmd === 'encode') {
    const tok = await bertTokenizer(a.vocab, !!a.cased);
    const lines = readLines(a.input).filter((l) => !BLANK.test(l));
    const ids = await encodeLines(tok, lines, 1000);
    fs.writeFileSync(a.output, ids.map((x) => x.join(' ') + '\n').join(''));
  } else if (cmd === 'train') {
    const tok = new tk.Tokenizer(tk.WordPiece.empty());
    tok.setNormalizer(normalizer(!!a.cased));
    tok.setPreTokenizer(tk.bertPreTokenizer());
    tok.train(a.input.split(','));
    const vocab = Object.entries(tok.getVocab()).sort((x, y) => x[1] - y[1]).map((x) => x[0]);
    const tokens = SPECIALS.concat(vocab.filter((t) => !SPECIALS.includes(t)));
    fs.writeFileSync(a.output, tokens.join('\n') + '\n');
  } else if (cmd === 'bench') {
    const tok = await bertTokenizer(a.vocab, !!a.cased);
    const batch = parseInt(a.batch || '1000', 10);
    const t0 = process.hrtime.bigint();
    const lines = readLines(a.input).filter((l) => !BLANK.test(l));
    const t1 = process.hrtime.bigint();
    let tokens = 0;
    for (const ids of await encodeLines(tok, lines, batch)) tokens += ids.length;
    const t2 = process.hrtime.bigint();
    const bytes = fs.statSync(a.input).size;
    const encodeS = Number(t2 - t1) / 1e9;
    const totalS = Number(t2 - t0) / 1e9;
    console.log(JSON.stringify({
      bench: 'hf_tokenizers_encode', version: require(path.join(modules, 'tokenizers', 'package.json')).version,
      rayon_threads: process.env.RAYON_NUM_THREADS || null, bytes, lines: lines.length, tokens,
      encode_seconds: encodeS, total_seconds: totalS,
      mb_per_s: bytes / 1e6 / encodeS, tokens_per_s: tokens / encodeS,
    }));
  } else if (cmd === 'compare') {
    if (!compare(a)) process.exit(1);
  } else if (cmd === 'hard-cases') {
    fs.writeFileSync(a.output, hardCases());
  } else if (cmd === 'sweep') {
    const parts = [];
    for (let cp = 0; cp <= 0x10ffff; cp++) {
      if ((cp >= 0xd800 && cp <= 0xdfff) || cp === 10) continue;
      parts.push('x' + String.fromCodePoint(cp) + 'x\n');
    }
    fs.writeFileSync(a.output, parts.join(''));
  } else if (cmd === 'char-vocab') {
    const tokens = fs.readFileSync(a.vocab, 'utf8').split('\n');
    if (tokens[tokens.length - 1] === '') tokens.pop();
    const seen = new Set(tokens);
    for (let cp = 0; cp <= 0x10ffff; cp++) {
      if (cp >= 0xd800 && cp <= 0xdfff) continue;
      const c = String.fromCodePoint(cp);
      // Characters a vocab line cannot hold (line breaks, trailing whitespace) stay out.
      if (/^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]$/u.test(c)) continue;
      for (const t of [c, '##' + c]) if (!seen.has(t)) { seen.add(t); tokens.push(t); }
    }
    fs.writeFileSync(a.output, tokens.join('\n') + '\n');
  } else {
    console.error('usage: node hf.mjs encode|train|bench ... (see the header of this file)');
    process.exit(2);
  }
}

main().catch((e) => {
  console.error(`hf.mjs: error: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
