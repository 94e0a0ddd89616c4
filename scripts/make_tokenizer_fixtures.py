#!/usr/bin/env python3
"""Tokenizer parity fixtures for tests/policy/test_tokenizer_parity.c.

Trains small byte-level BPE tokenizers with the pip `tokenizers` library (the pre-tokenizers
of Qwen2, DeepSeek-V3 and GPT-2, plus one that exercises every Split behaviour, a String
pattern, NFKC and ignore_merges), generates a corpus of varied strings, and writes what the
library does with each of them:

  tests/fixtures/tokenizer/corpus.jsonl           one JSON string per line (the test corpus)
  tests/fixtures/tokenizer/<name>/tokenizer.json  (+ tokenizer_config.json for qwen2)
  tests/fixtures/tokenizer/<name>/expected.txt    one line per tested string, key=value fields:
      ids=COUNT:HASH        the library's ids (HASH = FNV-1a 64 of the ids as 4-byte LE ints)
      full=ID,ID,...        the ids in full (first 100 strings, for readable failures)
      nospecial=COUNT:HASH  the ids with special tokens not parsed (split_special_tokens),
                            when the text contains a special token
      decoded=HASH          FNV-1a 64 of decode(ids) when it is not the string itself
                            (normalization, prefix space, stripped or removed text)
      skip=HASH             the same for decode(ids, skip_special_tokens=True) when it differs

Run: .venv/bin/python scripts/make_tokenizer_fixtures.py  (deterministic; needs
tokenizers, which the C build never does).
"""
import json
import os
import random

import tokenizers
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers
from tokenizers import pre_tokenizers, trainers

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "tokenizer")

QWEN2 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
         r"|\s*[\r\n]+|\s+(?!\S)|\s+")
DEEPSEEK3 = [
    r"\p{N}{1,3}",
    r"[一-龥぀-ゟ゠-ヿ]+",
    r"[!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+"
    r"| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
]

WORDS = ("the of and to in is that for it as was with be by on not he this are or his from at "
         "which but have an they you were her she there been one all we their has would when if "
         "so no will can more about what up said out them into than time only could new some "
         "these two may first then do any like my now over such our man me even most made after "
         "also did many before must through back years where much your way well down should "
         "because each just those people how too little state good very make world still own see "
         "men work long get here between both life being under never day same another know while "
         "last might us great old year off come since against go came right used take three "
         "Natalia sold clips April May Weng earns hour babysitting Betty saving money wallet "
         "QUESTION Answer Therefore boxed equation integer polynomial triangle").split()
SCRIPTS = {
    "cjk": "我们的数学问题是一个简单的方程式求解因为所以答案等于三角形面积计算机学习语言模型训练推理",
    "hiragana": "ありがとうございますこんにちはわたしはがくせいですひらがな",
    "katakana": "カタカナコンピューターテストデータベースプログラム",
    "hangul": "안녕하세요한국어수학문제입니다감사합니다",
    "cyrillic": "Привет мир это простой тест Математика задача решение ответ",
    "greek": "Καλημέρα κόσμε αβγδεζηθικλμνξοπρστυφχψω ΑΒΓΔ",
    "arabic": "مرحبا بالعالم هذا اختبار بسيط الرياضيات",
    "hebrew": "שלום עולם זה מבחן פשוט",
    "devanagari": "नमस्ते दुनिया यह एक सरल परीक्षण है गणित",
    "thai": "สวัสดีชาวโลกนี่คือการทดสอบง่ายๆ",
    "latin": "Ça été naïve façade Straße Ægir øre Ångström über coöperate Łódź Šťastný",
}
EMOJI = ["😀", "🎉", "👍", "👍🏽", "🧮", "🚀", "❤️", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇫🇷", "🇯🇵", "✅", "🤖", "1️⃣", "☕"]
SPACES = [" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", "\u00a0", "\u3000", "\u2009", "\u180e",
          "\u200b", " \n ", "\t\t", "\u2028", "\u0085", "\u202f", "        "]
DIGITS = ["0", "7", "42", "123", "2024", "3.14159", "-17", "1,080", "1000000", "٣٤٥", "१२३",
          "１２３", "²", "½", "Ⅻ", "007", "99.5%", "$18", "#### 72"]
COMBINING = ["e\u0301", "a\u0308", "n\u0303", "o\u0302", "c\u0327", "u\u0308\u0301", "\u1100\u1161",
             "\u1112\u1161\u11ab", "A\u030a", "i\u0307", "\u0915\u093c", "s\u0323\u0307"]
COMPAT = ["ﬁ", "ﬂ", "Ｈｅｌｌｏ", "①", "㎏", "™", "…", "ℌ", "ｶ", "ǅ"]
CODE = [
    "def solve(x):\n    return x * 2 + 1\n",
    "for (int i = 0; i < n; i++) {\n\tsum += a[i];\n}",
    "if __name__ == '__main__':\n    print(f\"{total:.2f}\")",
    "#include <stdio.h>\nint main(void) { return 0; }",
    "x = [i**2 for i in range(10) if i % 2 == 0]",
    "SELECT id, name FROM users WHERE age >= 18;",
    "const f = (a, b) => a ?? b || 'default';",
    "    \n        indented\n\n\n    block   ",
    "fn main() -> Result<(), Box<dyn Error>> { Ok(()) }",
    "    return {'a': 1, \"b\": [2, 3]}",
]
LATEX = [
    r"\frac{a}{b} + \sqrt{x^2 + y^2}",
    r"$\boxed{42}$",
    r"\[ \int_0^1 x^2\,dx = \frac{1}{3} \]",
    r"\sum_{i=1}^{n} i = \frac{n(n+1)}{2}",
    r"\begin{pmatrix} 1 & 0 \\ 0 & 1 \end{pmatrix}",
    r"$x \in \mathbb{R}$, $\alpha \leq \beta$",
    r"\left( \frac{3}{4} \right)^{-1} = \dfrac43",
]
CONTRACTIONS = ["it's", "don't", "we're", "they've", "I'm", "we'll", "he'd", "IT'S", "DON'T",
                "We'Re", "o'clock", "'tis"]


def random_piece(rng, added_texts):
    kind = rng.randrange(14)
    if kind == 0:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 12)))
    if kind == 1:
        s = rng.choice(list(SCRIPTS.values()))
        a = rng.randrange(len(s))
        return s[a:a + rng.randint(1, 20)]
    if kind == 2:
        return rng.choice(EMOJI) * rng.randint(1, 2)
    if kind == 3:
        return rng.choice(SPACES)
    if kind == 4:
        return rng.choice(DIGITS)
    if kind == 5:
        return rng.choice(COMBINING)
    if kind == 6:
        return rng.choice(COMPAT)
    if kind == 7:
        return rng.choice(CODE)
    if kind == 8:
        return rng.choice(LATEX)
    if kind == 9:
        return rng.choice(CONTRACTIONS)
    if kind == 10:
        return rng.choice(added_texts)
    if kind == 11:
        return "".join(rng.choice("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~") for _ in range(rng.randint(1, 4)))
    if kind == 12:  # random code points from long-assigned blocks
        blocks = [(0x20, 0x7e), (0xa0, 0x17f), (0x370, 0x3ff), (0x400, 0x4ff), (0x590, 0x5ff),
                  (0x600, 0x6ff), (0x900, 0x97f), (0x3040, 0x30ff), (0x4e00, 0x9fa5),
                  (0xac00, 0xd7a3), (0x2000, 0x206f), (0x2190, 0x22ff), (0x1f600, 0x1f64f),
                  (0x300, 0x36f)]
        out = []
        for _ in range(rng.randint(1, 8)):
            lo, hi = rng.choice(blocks)
            out.append(chr(rng.randint(lo, hi)))
        return "".join(out)
    return rng.choice(WORDS).capitalize() + rng.choice([".", ",", "!", "?", ":", ";", ""])


def make_corpus(rng, count, added_texts):
    corpus = ["", " ", "a", "\n", "  leading and trailing  ", "\u180e", "a\u180eb", " \u180e ",
              "x" * 300, "é" * 200, "abc" * 120, "\x00\x01\x7f\x1b[0m", "😀" * 50,
              "tab\tseparated\tvalues", "\r\n\r\n", "\u0301start with a mark"]
    while len(corpus) < count:
        parts = [random_piece(rng, added_texts) for _ in range(rng.randint(1, 4))]
        sep = rng.choice(["", " ", " ", "\n", ""])
        corpus.append(sep.join(parts))
    return corpus


def trainer_for(vocab_size, special):
    return trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                               initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                               special_tokens=special)


def build_qwen2(train):
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(train, trainer_for(1500, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]))
    tok.add_tokens([AddedToken("<think>", special=False, normalized=False),
                    AddedToken("</think>", special=False, normalized=False)])
    config = {"bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
              "chat_template": "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
                               "{{ message['content'] }}<|im_end|>\n{% endfor %}"}
    return tok, config, None


def build_deepseek3(train):
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.Sequence([])
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(Regex(p), behavior="isolated", invert=False) for p in DEEPSEEK3]
        + [pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(train, trainer_for(1500, ["<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"]))
    config = {"bos_token": {"content": "<｜begin▁of▁sentence｜>", "__type": "AddedToken"},
              "eos_token": {"content": "<｜end▁of▁sentence｜>", "__type": "AddedToken"}}
    return tok, config, "string_merges"


def build_gpt2_added(train):
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(train, trainer_for(1200, ["<s>", "</s>"]))
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, special=True, normalized=False)])
    tok.add_tokens([
        AddedToken("[R]", rstrip=True, special=False, normalized=False),
        AddedToken("[LR]", lstrip=True, rstrip=True, special=False, normalized=True),
        AddedToken("word", single_word=True, special=False, normalized=False),
        AddedToken("Cafe\u0301", special=False, normalized=True),    # matched in NFC form
        AddedToken("<sp ace>", special=False, normalized=False),    # decodes as raw bytes
        AddedToken("<|im", special=False, normalized=False),        # overlaps a longer special
        AddedToken("<|im_end|>", special=True, normalized=False),
    ])
    return tok, None, None


def build_splits(train):
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split("\n\n", behavior="removed"),
        pre_tokenizers.Split(Regex(r"\p{P}"), behavior="merged_with_next"),
        pre_tokenizers.Split(Regex(r"\p{N}"), behavior="contiguous"),
        pre_tokenizers.Split(Regex(r"\S+"), behavior="merged_with_previous", invert=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(train, trainer_for(1000, ["<|endoftext|>"]))
    return tok, None, "whole_words"


FULL_IDS = 100  # strings whose ids are written out in full, for readable failures
STRIDE = {"gpt2_added": 4, "splits": 2}  # keeps the fixtures small; qwen2 and deepseek3 test all
BUILDERS = {"qwen2": build_qwen2, "deepseek3": build_deepseek3, "gpt2_added": build_gpt2_added,
            "splits": build_splits}
ADDED_TEXTS = ["<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
               "<think>\nreasoning\n</think>", "<|endoftext|>", "<｜begin▁of▁sentence｜>Hi",
               "a <mask> b", "x   <mask>", "[R]   tail", "say [LR] now", " word ", "swordfish",
               "word!", "_word", "Café au lait", "Cafe\u0301 noir", "<sp ace>", "<|im_end|>x",
               "<|im", "end<｜end▁of▁sentence｜>", "<s>hello</s>"]


def bytes_to_unicode():
    keep = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table, n = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(0x100 + n)
            n += 1
    return table


BYTE_CHAR = bytes_to_unicode()


def fnv64(ids):
    """FNV-1a over the ids as 4-byte little-endian integers (the C test computes the same)."""
    h = 0xCBF29CE484222325
    for i in ids:
        for b in i.to_bytes(4, "little"):
            h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def fnv64_text(text):
    """FNV-1a over the UTF-8 bytes."""
    h = 0xCBF29CE484222325
    for b in text.encode("utf-8"):
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def write_fixture(name, tok, config, variant, corpus, stride):
    out = os.path.join(ROOT, name)
    os.makedirs(out, exist_ok=True)
    data = json.loads(tok.to_str())
    if variant == "whole_words":
        # Whole words the merges cannot build: only ignore_merges reaches them.
        vocab = data["model"]["vocab"]
        for word in ["Natalia", "babysitting", "Stra\u00dfe", "polynomial", "\u6570\u5b66"]:
            mapped = "".join(BYTE_CHAR[b] for b in word.encode("utf-8"))
            if mapped not in vocab:
                vocab[mapped] = max(max(vocab.values()), max(t["id"] for t in data["added_tokens"])) + 1
        tok = Tokenizer.from_str(json.dumps(data))
    if variant == "string_merges":
        data["model"]["merges"] = [" ".join(m) for m in data["model"]["merges"]]
        tok = Tokenizer.from_str(json.dumps(data))
    else:
        assert all(isinstance(m, list) for m in data["model"]["merges"])
    with open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, separators=(",", ":"))
    if config is not None:
        with open(os.path.join(out, "tokenizer_config.json"), "w", encoding="utf-8") as f:
            json.dump(config, f, ensure_ascii=False, indent=1)
    specials = [t.content for t in tok.get_added_tokens_decoder().values() if t.special]
    with open(os.path.join(out, "expected.txt"), "w") as f:
        f.write(f"# line k: corpus[k*{stride}] as key=value fields; see make_tokenizer_fixtures.py\n")
        for k, i in enumerate(range(0, len(corpus), stride)):
            text = corpus[i]
            ids = tok.encode(text, add_special_tokens=False).ids
            fields = [f"ids={len(ids)}:{fnv64(ids):016x}"]
            if k < FULL_IDS:
                fields.append("full=" + ",".join(map(str, ids)))
            if any(s in text for s in specials):
                tok.encode_special_tokens = True
                plain = tok.encode(text, add_special_tokens=False).ids
                tok.encode_special_tokens = False
                fields.append(f"nospecial={len(plain)}:{fnv64(plain):016x}")
            decoded = tok.decode(ids, skip_special_tokens=False)
            skipped = tok.decode(ids, skip_special_tokens=True)
            if decoded != text:
                fields.append(f"decoded={fnv64_text(decoded):016x}")
            if skipped != decoded:
                fields.append(f"skip={fnv64_text(skipped):016x}")
            f.write(" ".join(fields) + "\n")


def main():
    rng = random.Random(20260622)
    train = make_corpus(random.Random(7), 20000, ADDED_TEXTS)
    corpus = make_corpus(rng, 5000, ADDED_TEXTS)
    os.makedirs(ROOT, exist_ok=True)
    with open(os.path.join(ROOT, "corpus.jsonl"), "w", encoding="utf-8") as f:
        for s in corpus:
            f.write(json.dumps(s, ensure_ascii=False) + "\n")
    for name, build in BUILDERS.items():
        tok, config, variant = build(train)
        write_fixture(name, tok, config, variant, corpus, STRIDE.get(name, 1))
    with open(os.path.join(ROOT, "VERSION"), "w") as f:
        f.write(f"tokenizers {tokenizers.__version__}\n")


if __name__ == "__main__":
    main()
