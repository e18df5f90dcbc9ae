/**
 * The fusion pipeline, run after CANONICALIZE: each entry a named pass (`--dump-after=NAME`).
 *
 *   fuse-norm          RMSNorm / LayerNorm (decomposed and op forms)     → lfc.RMSNorm, lfc.LayerNorm
 *   fuse-add-norm      residual Add + norm                               → lfc.AddNorm (y, sum)
 *   fuse-linear        MatMul / Gemm by a constant weight (+ bias)       → lfc.Linear
 *   fuse-activation    GELU (tanh, erf), SiLU in elementwise ops         → lfc.Activation
 *   fuse-gated-mlp     Mul(Activation(gate), up)                         → lfc.GatedAct
 *   fuse-linear-act    Linear → Activation (its only use)                → Linear{activation}
 *   merge-qkv          three Linears on one input                        → Linear + Split
 *
 * Norms go first so that AddNorm sees the norm node; Linear before the activations so a bias Add is
 * inside the Linear and not read as part of a GELU; gated MLPs before the epilogue so the gate's
 * activation stays visible to GatedAct. Attention, RoPE and KV-cache passes are appended after these;
 * fuse-attention-forms (already-fused GQA / MHA / Attention-23 / RotaryEmbedding → lfc.Rope and
 * lfc.Attention) runs before them (compile.ts), so the projections and biases it leaves fuse here.
 */
import type { Pass } from './driver.js';
import { fuseAddNorm, fuseNorm } from './fuse-norm.js';
import { fuseLinear, fuseLinearAct, mergeQkv } from './fuse-linear.js';
import { fuseActivation, fuseGatedMlp } from './fuse-mlp.js';

export const FUSE: Pass[] = [fuseNorm, fuseAddNorm, fuseLinear, fuseActivation, fuseGatedMlp, fuseLinearAct, mergeQkv];
