/* The communication layer between the processes of one job (docs/distributed.md).
 *
 * A job is N processes started by an MPI launcher (mpirun -np N, srun --mpi=pmix); with
 * none (a plain `aha train`) it is one process and no MPI call is ever made, so the aha
 * binary runs without a launcher even when it was built with MPI. Built without MPI
 * (-DAHA_MPI=OFF, or AUTO without libopenmpi-dev) every call is the one-process case.
 *
 * The state is process-wide, as MPI's is: aha_dist_init once (from the command that wants
 * ranks), aha_dist_finalize before exiting. Every call is made by every rank in the same
 * order (collectives), from one thread at a time. Every MPI error is returned as -1 with
 * the call named in the message; a rank that fails ends the job with aha_dist_abort. */
#ifndef AHA_DIST_H
#define AHA_DIST_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { AHA_DIST_FLOAT, AHA_DIST_DOUBLE, AHA_DIST_INT, AHA_DIST_INT64 } AhaDistType;
typedef enum { AHA_DIST_SUM, AHA_DIST_MAX, AHA_DIST_MIN } AhaDistOp;

/* 1 when this binary was built with MPI. */
int aha_dist_built_with_mpi(void);
/* 1 when the environment says an MPI launcher started this process (OMPI_COMM_WORLD_SIZE,
 * PMIX_RANK, PMI_RANK or PMI_SIZE is set). */
int aha_dist_launched(void);
/* Joins the job when launched (MPI_Init_thread with MPI_THREAD_SERIALIZED; errors are
 * returned, not fatal), else stays one process. Launched by an MPI launcher into a binary
 * built without MPI: an error when the launcher says N > 1. Calling it twice is a no-op. */
int aha_dist_init(void);
/* MPI_Finalize when aha_dist_init joined a job. */
int aha_dist_finalize(void);
/* Prints nothing; ends every process of the job with `code` (MPI_Abort), or exits this
 * one when there is no job. Only the CLI calls it, after printing the error. */
void aha_dist_abort(int code);

int aha_dist_size(void);        /* processes in the job (1 without one) */
int aha_dist_rank(void);        /* 0 .. size-1 */
int aha_dist_local_rank(void);  /* rank among the processes of this host (one GPU each) */
int aha_dist_local_size(void);

/* The share of `count` items owned by rank r of n: [count*r/n, count*(r+1)/n). */
size_t aha_dist_share_lo(size_t count, int r, int n);

/* In place: buf[count] of every rank combined elementwise, the result on every rank. */
int aha_dist_allreduce(void *buf, size_t count, AhaDistType type, AhaDistOp op);
/* Everyone's bytes concatenated in rank order on every rank: *out (caller frees, non-NULL
 * even when empty) and lens[size] (each rank's length). */
int aha_dist_allgather_bytes(const void *send, size_t len, char **out, size_t *lens);
/* The same onto `root` only (other ranks get *out = NULL, lens untouched). */
int aha_dist_gather_bytes(const void *send, size_t len, int root, char **out, size_t *lens);
/* root's buf[bytes] to every rank. */
int aha_dist_broadcast(void *buf, size_t bytes, int root);
/* In place: buf[sum of counts] from every rank, summed; afterwards this rank's slice (at
 * the prefix sum of counts before it) holds the sum; the rest of buf is left undefined. */
int aha_dist_reduce_scatter_float(float *buf, const size_t *counts);
/* In place: buf holds every rank's slice at its offset (prefix sums of counts); each rank's
 * own slice goes to every other rank. */
int aha_dist_allgather_float(float *buf, const size_t *counts);
/* Bytes to each rank: send_counts[r] bytes to rank r (in rank order in send), recv_counts
 * filled by the exchange, *recv (caller frees) the bytes from each rank in rank order. */
int aha_dist_alltoallv_bytes(const void *send, const size_t *send_counts, char **recv,
                             size_t *recv_counts);
int aha_dist_barrier(void);

/* ---- Expert groups (expert parallel, docs/distributed.md) ----
 * The job's ranks in groups of `size` consecutive ranks (size divides the world); a group's
 * ranks process the same tokens and split each MoE layer's experts: rank e of the group
 * owns experts [E e / size, E (e+1) / size). Size 1 (the default) is no split. */
int aha_dist_expert_init(int size);
int aha_dist_expert_size(void);
int aha_dist_expert_rank(void);   /* rank within the expert group */
/* In place over the expert group: buf holds each member's block at the prefix sum of
 * counts (floats); every member's own block goes to every other member. Called from the
 * layers' forward and backward, which return nothing: a failing MPI call ends the job
 * with MPI's message (the group's error handler is MPI_ERRORS_ARE_FATAL). */
void aha_dist_expert_allgather_float(float *buf, const size_t *counts);

/* ---- NCCL (GPU collectives; core/dist_nccl.c) ----
 * Built when CMake finds CUDA and NCCL. init: the GPU of this process is its rank on the
 * host (aha_dist_local_rank), the communicator spans the job (its unique id made by rank 0
 * and broadcast with aha_dist_broadcast); with no launcher it is a job of one. */
int aha_dist_nccl_built(void);
int aha_dist_nccl_init(void);
/* In place on the device, summed over the job, on `stream` (a cudaStream_t; NULL = the
 * default stream); asynchronous as NCCL is. */
int aha_dist_nccl_allreduce_float(float *device_buf, size_t count, void *stream);
int aha_dist_nccl_finalize(void);

/* Seconds this process has spent inside the calls above (the communication share). */
double aha_dist_comm_seconds(void);

#ifdef __cplusplus
}
#endif

#endif
