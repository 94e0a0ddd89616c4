/* A batch-invariant matrix product for decoding (internal to libaha).
 *
 * OpenBLAS sgemm computes a row's results with different microkernels, and so with
 * different rounding, depending on how many rows the call has and how the threads split
 * it. A sampler built on it would give a sequence different tokens depending on which
 * other sequences shared its batch, and prefix sharing or the thread count would change
 * completions. Here every output element is the same sequence of operations whatever n,
 * the element's place in the matrix or the thread: an 8-lane FMA accumulation over the
 * input in steps of 8, a fixed horizontal sum, then the remaining inputs in order, then the
 * bias. Register blocking (4 rows x 3 columns) only changes which elements are computed
 * together. */
#ifndef AHA_KERNELS_CPU_MATMUL_INVARIANT_H
#define AHA_KERNELS_CPU_MATMUL_INVARIANT_H

/* out[n,out_dim] = in[n,in_dim] @ weight[out_dim,in_dim]^T (+ bias[out_dim] if not NULL):
 * the signature of AhaKernels.matmul_forward. OpenMP over tiles of the output. */
void aha_matmul_forward_invariant(float *out, const float *in, const float *weight,
                                  const float *bias, int n, int in_dim, int out_dim);
/* The plain C form: the same operations one element at a time (bit-identical results). */
void aha_matmul_forward_invariant_ref(float *out, const float *in, const float *weight,
                                      const float *bias, int n, int in_dim, int out_dim);

#endif
