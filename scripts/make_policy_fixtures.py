#!/usr/bin/env python3
"""Parity fixtures for the policy: tiny random Hugging Face MoE models and what
transformers computes with them.

For each architecture (qwen3_moe, qwen2_moe, olmoe, mixtral) it builds a tiny random fp32
model, saves the model directory (config.json + model.safetensors) under
tests/fixtures/policy/<arch>/ and records, for one packed batch of two sequences of
different lengths (each run separately through transformers):
  batch.json          tokens, seq_start, targets, loss, aux loss, AdamW settings and norms
  expected.safetensors
    logits            [T, V]
    grad.<name>       d(mean token cross-entropy)/d(param), named as in model.safetensors
    aux_grad.<name>   d(Switch load-balancing loss)/d(param)   (qwen3_moe, qwen2_moe)
    adamw.<name>      params after the AdamW steps              (qwen3_moe)
It also writes two layout variants of the same weights for the loader tests:
  qwen3_moe_fused_bf16/   bf16, experts fused as gate_up_proj [E,2I,H] + down_proj [E,H,I]
  qwen2_moe_sharded_bf16/ bf16, three shards with model.safetensors.index.json

config.json is written the way hub checkpoints spell it (num_experts, rope_theta,
torch_dtype), which transformers v5 still reads.

Usage:
  .venv/bin/python scripts/make_policy_fixtures.py [--out tests/fixtures/policy]
  .venv/bin/python scripts/make_policy_fixtures.py --big DIR
      writes a ~1 GB bf16 qwen3_moe checkpoint of random weights (for measuring load memory).
  .venv/bin/python scripts/make_policy_fixtures.py --check-saved DIR --fixture ARCH
      loads DIR/model, a model directory written by aha (build/parity_saved/* after
      test_parity ran), into transformers and compares its logits on the fixture batch of
      ARCH with DIR/aha_logits.safetensors, what aha computed from the same directory.
"""
import argparse
import json
import os
import shutil
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from transformers import (MixtralConfig, MixtralForCausalLM, OlmoeConfig, OlmoeForCausalLM,
                          Qwen2MoeConfig, Qwen2MoeForCausalLM, Qwen3MoeConfig,
                          Qwen3MoeForCausalLM)
from transformers.models.qwen3_moe.modeling_qwen3_moe import load_balancing_loss_func

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEQ_LENS = (7, 5)
ADAMW = dict(lr=1e-3, beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.1, max_grad_norm=1.0,
             steps=3)
ROPE = {"rope_type": "default", "rope_theta": 10000.0}

ARCHS = {
    # q/k norm per head, head_dim 8 != 16/4, a dense layer via mlp_only_layers, renormalized top-k
    "qwen3_moe": (Qwen3MoeConfig, Qwen3MoeForCausalLM, dict(
        vocab_size=64, hidden_size=16, num_hidden_layers=3, num_attention_heads=4,
        num_key_value_heads=2, head_dim=8, num_experts=4, num_experts_per_tok=2,
        moe_intermediate_size=12, intermediate_size=20, mlp_only_layers=[1],
        decoder_sparse_step=1, norm_topk_prob=True, rms_norm_eps=1e-6,
        router_aux_loss_coef=0.001, max_position_embeddings=64, tie_word_embeddings=False)),
    # shared expert with a sigmoid gate, q/k/v bias, no renormalization
    "qwen2_moe": (Qwen2MoeConfig, Qwen2MoeForCausalLM, dict(
        vocab_size=64, hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, num_experts=4, num_experts_per_tok=2, moe_intermediate_size=12,
        shared_expert_intermediate_size=24, intermediate_size=20, decoder_sparse_step=1,
        norm_topk_prob=False, qkv_bias=True, rms_norm_eps=1e-6, router_aux_loss_coef=0.001,
        max_position_embeddings=64, tie_word_embeddings=False, use_sliding_window=False)),
    # q/k RMSNorm over the whole projection width, eps 1e-5, no renormalization
    "olmoe": (OlmoeConfig, OlmoeForCausalLM, dict(
        vocab_size=64, hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, num_experts=4, num_experts_per_tok=2, intermediate_size=12,
        norm_topk_prob=False, rms_norm_eps=1e-5, router_aux_loss_coef=0.01,
        max_position_embeddings=64, tie_word_embeddings=False, pad_token_id=1,
        eos_token_id=2, bos_token_id=None)),
    # block_sparse_moe w1/w3/w2 names, always renormalized
    "mixtral": (MixtralConfig, MixtralForCausalLM, dict(
        vocab_size=64, hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2,
        intermediate_size=12, rms_norm_eps=1e-5, router_aux_loss_coef=0.02,
        max_position_embeddings=64, tie_word_embeddings=False, sliding_window=None)),
}
AUX_GRADS = ("qwen3_moe", "qwen2_moe")
ADAMW_ARCHS = ("qwen3_moe",)


def hub_config(model, arch):
    """config.json as hub checkpoints write it (transformers v4 key names)."""
    d = model.config.to_dict()
    rope = d.pop("rope_parameters", None) or {}
    d["rope_theta"] = float(rope.get("rope_theta", ROPE["rope_theta"]))
    if arch != "mixtral" and "num_local_experts" in d:
        d["num_experts"] = d.pop("num_local_experts")
    d["torch_dtype"] = d.pop("dtype", "float32") or "float32"
    for key in ("transformers_version", "output_router_logits", "layer_types", "_name_or_path",
                "id2label", "label2id", "chunk_size_feed_forward", "is_encoder_decoder",
                "output_attentions", "output_hidden_states", "problem_type", "return_dict"):
        d.pop(key, None)
    if d.get("head_dim") is None:
        d.pop("head_dim", None)  # hub configs without head_dim mean hidden / heads
    d["architectures"] = [type(model).__name__]
    return d


def make_model(arch, seed):
    cfg_cls, model_cls, kwargs = ARCHS[arch]
    cfg = cfg_cls(**kwargs, rope_parameters=dict(ROPE))
    torch.manual_seed(seed)
    model = model_cls(cfg).float()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            elif name.endswith("gate.weight") and "shared" not in name:
                p.copy_(0.6 * torch.randn(p.shape, generator=gen))  # well separated routing
            else:
                p.copy_(0.25 * torch.randn(p.shape, generator=gen))
    return model


def make_batch(vocab, seed):
    gen = torch.Generator().manual_seed(seed + 1000)
    seqs = [torch.randint(0, vocab, (n,), generator=gen) for n in SEQ_LENS]
    targets = []
    for s in seqs:
        targets += s[1:].tolist() + [-1]  # next token; the last of a sequence is not scored
    return seqs, targets


def run(model, seqs):
    """Per-sequence forward: logits [T,V], summed cross-entropy, router logits per layer."""
    logits, ce_sum, routers = [], 0.0, None
    for s in seqs:
        out = model(s[None, :], output_router_logits=True, use_cache=False)
        lg = out.logits[0]
        logits.append(lg)
        ce_sum = ce_sum + F.cross_entropy(lg[:-1], s[1:], reduction="sum")
        r = [x.reshape(len(s), -1) for x in out.router_logits]
        routers = r if routers is None else [torch.cat([a, b]) for a, b in zip(routers, r)]
    return torch.cat(logits), ce_sum, routers


def routing_gap(routers, top_k):
    """Smallest gap between the k-th and (k+1)-th router probability over all tokens."""
    gap = float("inf")
    for r in routers:
        p = torch.softmax(r.double(), -1).sort(-1, descending=True).values
        gap = min(gap, (p[:, top_k - 1] - p[:, top_k]).min().item())
    return gap


def file_names(arch, model):
    """Maps each parameter to the tensors of model.safetensors: [(file name, slicer)]."""
    out = {}
    moe = "block_sparse_moe" if arch == "mixtral" else "mlp"
    w = ("w1", "w3", "w2") if arch == "mixtral" else ("gate_proj", "up_proj", "down_proj")
    for name, p in model.named_parameters():
        if name.endswith("mlp.experts.gate_up_proj"):
            base = name[: -len("mlp.experts.gate_up_proj")] + moe + ".experts."
            n_exp, two_i = p.shape[0], p.shape[1]
            half = two_i // 2
            out[name] = [(f"{base}{e}.{w[0]}.weight", (e, slice(0, half))) for e in range(n_exp)] + \
                        [(f"{base}{e}.{w[1]}.weight", (e, slice(half, two_i))) for e in range(n_exp)]
        elif name.endswith("mlp.experts.down_proj"):
            base = name[: -len("mlp.experts.down_proj")] + moe + ".experts."
            out[name] = [(f"{base}{e}.{w[2]}.weight", (e,)) for e in range(p.shape[0])]
        elif arch == "mixtral" and ".mlp.gate." in name:
            out[name] = [(name.replace(".mlp.gate.", ".block_sparse_moe.gate."), ())]
        else:
            out[name] = [(name, ())]
    return out


def per_file(arch, model, tensors):
    """{file name: tensor} for a dict of {param name: tensor of the param's shape}."""
    res = {}
    for name, parts in file_names(arch, model).items():
        for fname, index in parts:
            res[fname] = tensors[name][index].contiguous().clone()
    return res


def grads_of(model, loss):
    model.zero_grad()
    loss.backward(retain_graph=True)
    return {n: p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p)
            for n, p in model.named_parameters()}


def save_dir(model, arch, path, dtype=torch.float32):
    os.makedirs(path, exist_ok=True)
    params = {n: p.detach().to(dtype) for n, p in model.named_parameters()}
    save_file(per_file(arch, model, params), os.path.join(path, "model.safetensors"),
              metadata={"format": "pt"})
    cfg = hub_config(model, arch)
    cfg["torch_dtype"] = "bfloat16" if dtype == torch.bfloat16 else "float32"
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")


def make_fixture(arch, out_root):
    top_k = ARCHS[arch][2]["num_experts_per_tok"]
    for seed in range(1, 200):
        model = make_model(arch, seed)
        seqs, targets = make_batch(model.config.vocab_size, seed)
        logits, ce_sum, routers = run(model, seqs)
        if routing_gap(routers, top_k) > 2e-3:
            break
    else:
        sys.exit(f"{arch}: no seed gave well separated routing")
    n_scored = sum(t >= 0 for t in targets)
    loss = ce_sum / n_scored
    n_exp = model.config.num_local_experts if hasattr(model.config, "num_local_experts") \
        else model.config.num_experts
    aux = load_balancing_loss_func(tuple(routers), n_exp, top_k)
    expected = {"logits": logits.detach().clone()}
    for k, v in per_file(arch, model, grads_of(model, loss)).items():
        expected["grad." + k] = v
    if arch in AUX_GRADS:
        for k, v in per_file(arch, model, grads_of(model, aux)).items():
            expected["aux_grad." + k] = v

    path = os.path.join(out_root, arch)
    if os.path.isdir(path):
        shutil.rmtree(path)
    save_dir(model, arch, path)
    batch = {
        "arch": arch, "seed": seed,
        "tokens": torch.cat(seqs).tolist(),
        "seq_start": [0, SEQ_LENS[0], SEQ_LENS[0] + SEQ_LENS[1]],
        "targets": targets, "n_scored": n_scored,
        "loss": loss.item(), "aux_loss": aux.item(),
        "routing_gap": routing_gap(routers, top_k),
    }
    if arch in ADAMW_ARCHS:
        trained = make_model(arch, seed)
        opt = torch.optim.AdamW(trained.parameters(), lr=ADAMW["lr"],
                                betas=(ADAMW["beta1"], ADAMW["beta2"]), eps=ADAMW["eps"],
                                weight_decay=ADAMW["weight_decay"])
        norms = []
        for _ in range(ADAMW["steps"]):
            opt.zero_grad()
            _, ce, r = run(trained, seqs)
            assert routing_gap(r, top_k) > 1e-3, "routing became ambiguous during AdamW steps"
            (ce / n_scored).backward()
            norms.append(torch.nn.utils.clip_grad_norm_(trained.parameters(),
                                                        ADAMW["max_grad_norm"]).item())
            opt.step()
        params = {n: p.detach() for n, p in trained.named_parameters()}
        for k, v in per_file(arch, trained, params).items():
            expected["adamw." + k] = v
        batch["adamw"] = dict(ADAMW, grad_norms=norms)
    save_file(expected, os.path.join(path, "expected.safetensors"))
    with open(os.path.join(path, "batch.json"), "w") as f:
        json.dump(batch, f, indent=1)
        f.write("\n")
    print(f"{arch}: seed {seed}, loss {loss.item():.6f}, aux {aux.item():.6f}, "
          f"gap {batch['routing_gap']:.4f}")
    return model


def make_fused_bf16(model, out_root):
    """qwen3_moe weights in bf16 with the fused expert layout transformers v5 keeps in memory."""
    path = os.path.join(out_root, "qwen3_moe_fused_bf16")
    if os.path.isdir(path):
        shutil.rmtree(path)
    os.makedirs(path)
    tensors = {n: p.detach().to(torch.bfloat16).contiguous() for n, p in model.named_parameters()}
    save_file(tensors, os.path.join(path, "model.safetensors"), metadata={"format": "pt"})
    cfg = hub_config(model, "qwen3_moe")
    cfg["torch_dtype"] = "bfloat16"
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")


def make_sharded_bf16(model, out_root):
    """qwen2_moe weights in bf16, split into three shards with an index."""
    path = os.path.join(out_root, "qwen2_moe_sharded_bf16")
    if os.path.isdir(path):
        shutil.rmtree(path)
    os.makedirs(path)
    params = {n: p.detach().to(torch.bfloat16) for n, p in model.named_parameters()}
    tensors = per_file("qwen2_moe", model, params)
    names = sorted(tensors)
    shards = [names[i::3] for i in range(3)]
    weight_map, total = {}, 0
    for i, shard in enumerate(shards):
        fname = f"model-{i + 1:05d}-of-00003.safetensors"
        save_file({n: tensors[n] for n in shard}, os.path.join(path, fname),
                  metadata={"format": "pt"})
        for n in shard:
            weight_map[n] = fname
            total += tensors[n].numel() * 2
    with open(os.path.join(path, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2,
                  sort_keys=True)
        f.write("\n")
    cfg = hub_config(model, "qwen2_moe")
    cfg["torch_dtype"] = "bfloat16"
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")


def check_saved(saved, arch, out_root):
    """Loads a model directory written by aha (saved/model) into transformers and compares its
    logits on the fixture batch with the ones aha computed from the same directory
    (saved/aha_logits.safetensors, written by tests/policy/test_parity.c)."""
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM
    with open(os.path.join(out_root, arch, "batch.json")) as f:
        batch = json.load(f)
    expected = load_file(os.path.join(saved, "aha_logits.safetensors"))["logits"]
    model = AutoModelForCausalLM.from_pretrained(os.path.join(saved, "model")).float().eval()
    tokens = torch.tensor(batch["tokens"])
    starts = batch["seq_start"]
    seqs = [tokens[starts[i]:starts[i + 1]] for i in range(len(starts) - 1)]
    with torch.no_grad():
        logits, _, _ = run(model, seqs)
    diff = (logits - expected).abs().max().item()
    rel = diff / expected.abs().max().item()
    print(f"{saved}: {type(model).__name__}, max |logit diff| {diff:.3g}, relative {rel:.3g}")
    return rel


BIG = dict(vocab_size=32000, hidden_size=1024, num_hidden_layers=8, num_attention_heads=16,
           num_key_value_heads=4, head_dim=64, num_experts=32, num_experts_per_tok=4,
           moe_intermediate_size=512, intermediate_size=2048, norm_topk_prob=True,
           rms_norm_eps=1e-6, max_position_embeddings=4096)


def make_big(path):
    """A ~1 GB bf16 qwen3_moe checkpoint of random weights, for measuring load memory (not a
    fixture: never commit it). Tensors are written directly, without building the model."""
    c = BIG
    H, V, hd = c["hidden_size"], c["vocab_size"], c["head_dim"]
    q, kv, E, inter = c["num_attention_heads"] * hd, c["num_key_value_heads"] * hd, \
        c["num_experts"], c["moe_intermediate_size"]
    shapes = {"model.embed_tokens.weight": (V, H), "model.norm.weight": (H,),
              "lm_head.weight": (V, H)}
    for layer in range(c["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        shapes.update({p + "input_layernorm.weight": (H,), p + "post_attention_layernorm.weight": (H,),
                       p + "self_attn.q_proj.weight": (q, H), p + "self_attn.k_proj.weight": (kv, H),
                       p + "self_attn.v_proj.weight": (kv, H), p + "self_attn.o_proj.weight": (H, q),
                       p + "self_attn.q_norm.weight": (hd,), p + "self_attn.k_norm.weight": (hd,),
                       p + "mlp.gate.weight": (E, H)})
        for e in range(E):
            shapes.update({f"{p}mlp.experts.{e}.gate_proj.weight": (inter, H),
                           f"{p}mlp.experts.{e}.up_proj.weight": (inter, H),
                           f"{p}mlp.experts.{e}.down_proj.weight": (H, inter)})
    gen = torch.Generator().manual_seed(0)
    tensors = {n: (0.02 * torch.randn(s, generator=gen)).to(torch.bfloat16)
               for n, s in shapes.items()}
    os.makedirs(path, exist_ok=True)
    save_file(tensors, os.path.join(path, "model.safetensors"), metadata={"format": "pt"})
    cfg = dict(c, model_type="qwen3_moe", architectures=["Qwen3MoeForCausalLM"],
               hidden_act="silu", rope_theta=1e6, torch_dtype="bfloat16",
               tie_word_embeddings=False, decoder_sparse_step=1, mlp_only_layers=[],
               attention_bias=False, use_sliding_window=False, router_aux_loss_coef=0.001)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
    n = sum(t.numel() for t in tensors.values())
    print(f"{path}: {n / 1e6:.1f} M parameters, {2 * n / 1e9:.2f} GB bf16")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "policy"))
    ap.add_argument("--check-saved", metavar="DIR")
    ap.add_argument("--fixture", choices=sorted(ARCHS))
    ap.add_argument("--tolerance", type=float, default=1e-4)
    ap.add_argument("--big", metavar="DIR", help="write a ~1 GB bf16 checkpoint to DIR (not a fixture)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.big:
        make_big(args.big)
        return
    if args.check_saved:
        rel = check_saved(args.check_saved, args.fixture, args.out)
        sys.exit(0 if rel < args.tolerance else 1)
    os.makedirs(args.out, exist_ok=True)
    models = {arch: make_fixture(arch, args.out) for arch in ARCHS}
    make_fused_bf16(models["qwen3_moe"], args.out)
    make_sharded_bf16(models["qwen2_moe"], args.out)


if __name__ == "__main__":
    main()
