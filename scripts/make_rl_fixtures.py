#!/usr/bin/env python3
"""Writes the trainer tests' fixtures (tests/fixtures/rl/): a tiny qwen3_moe config.json
(the weights are drawn at run time with model.init: random), a character-level
tokenizer.json in the shape of data/char_tokenizer.c, and two small sum data sets.
Run from the repository root: .venv/bin/python scripts/make_rl_fixtures.py"""
import json
import os
import random

OUT = "tests/fixtures/rl"
CHARSET = "0123456789+-*=() "
TAGS = ["<think>", "</think>", "<answer>", "</answer>"]
EOS = "<|endoftext|>"


def added(i, content, special):
    return {"id": i, "content": content, "single_word": False, "lstrip": False,
            "rstrip": False, "normalized": False, "special": special}


def write_tokenizer(d):
    vocab, tokens = {}, []
    for i, c in enumerate(CHARSET):
        vocab["\u0120" if c == " " else c] = i
    n = len(CHARSET)
    for t, tag in enumerate(TAGS):
        vocab[tag] = n + t
        tokens.append(added(n + t, tag, False))
    eos_id = n + len(TAGS)
    vocab[EOS] = eos_id
    tokens.append(added(eos_id, EOS, True))
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                  "use_regex": False}
    tok = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": tokens,
           "normalizer": None, "pre_tokenizer": byte_level, "post_processor": None,
           "decoder": byte_level,
           "model": {"type": "BPE", "dropout": None, "unk_token": None,
                     "continuing_subword_prefix": None, "end_of_word_suffix": None,
                     "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                     "vocab": vocab, "merges": []}}
    with open(os.path.join(d, "tokenizer.json"), "w") as f:
        json.dump(tok, f, indent=1)
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": EOS,
                   "bos_token": None, "pad_token": EOS, "model_max_length": 4096}, f, indent=1)
    return eos_id + 1, eos_id


def write_config(d, vocab, eos_id):
    cfg = {"architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe",
           "vocab_size": vocab, "hidden_size": 32, "num_hidden_layers": 2,
           "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8,
           "intermediate_size": 48, "num_experts": 4, "num_experts_per_tok": 2,
           "moe_intermediate_size": 16, "norm_topk_prob": True, "decoder_sparse_step": 1,
           "mlp_only_layers": [], "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
           "router_aux_loss_coef": 0.001, "initializer_range": 0.2,
           "max_position_embeddings": 256, "tie_word_embeddings": False,
           "bos_token_id": None, "eos_token_id": eos_id, "pad_token_id": eos_id,
           "hidden_act": "silu", "attention_bias": False, "torch_dtype": "float32"}
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)


def write_data(path, rows):
    with open(path, "w") as f:
        for q, a in rows:
            f.write(json.dumps({"question": q, "answer": a}) + "\n")


def main():
    d = os.path.join(OUT, "tiny")
    os.makedirs(d, exist_ok=True)
    vocab, eos_id = write_tokenizer(d)
    write_config(d, vocab, eos_id)
    rng = random.Random(6)
    pairs = [(a, b) for a in range(10) for b in range(10)]
    rng.shuffle(pairs)
    write_data(os.path.join(OUT, "train.jsonl"), [(f"{a}+{b}=", str(a + b)) for a, b in pairs[:24]])
    write_data(os.path.join(OUT, "eval.jsonl"), [(f"{a}+{b}=", str(a + b)) for a, b in pairs[24:30]])


if __name__ == "__main__":
    main()
