/* NCCL behind the communication layer (include/aha/dist.h): one GPU per process, chosen by
 * its rank on the host; the communicator's unique id made by rank 0 and broadcast over MPI.
 * Built when CMake finds CUDA and NCCL; otherwise every call says it is not built. */
#include "aha/dist.h"

#include <stdlib.h>

#include "aha/error.h"

#ifdef AHA_HAVE_NCCL
#include <cuda_runtime.h>
#include <nccl.h>

static ncclComm_t comm;
static int have_comm;

#define CUDA_CHECK(call)                                                                        \
    do {                                                                                        \
        cudaError_t cuda_rc_ = (call);                                                          \
        if (cuda_rc_ != cudaSuccess) return aha_errorf("%s: %s", #call, cudaGetErrorString(cuda_rc_)); \
    } while (0)

#define NCCL_CHECK(call)                                                                        \
    do {                                                                                        \
        ncclResult_t nccl_rc_ = (call);                                                         \
        if (nccl_rc_ != ncclSuccess) return aha_errorf("%s: %s", #call, ncclGetErrorString(nccl_rc_)); \
    } while (0)

int aha_dist_nccl_built(void) { return 1; }

int aha_dist_nccl_init(void) {
    if (have_comm) return 0;
    int devices = 0;
    CUDA_CHECK(cudaGetDeviceCount(&devices));
    int local = aha_dist_local_rank();
    AHA_REQUIRE(devices > 0, "NCCL: no CUDA device on this host");
    AHA_REQUIRE(local < devices,
                "NCCL: this process is number %d on its host, which has %d GPU%s: start at most one "
                "process per GPU", local + 1, devices, devices == 1 ? "" : "s");
    CUDA_CHECK(cudaSetDevice(local));
    ncclUniqueId id;
    if (aha_dist_rank() == 0) NCCL_CHECK(ncclGetUniqueId(&id));
    AHA_TRY(aha_dist_broadcast(&id, sizeof id, 0));
    NCCL_CHECK(ncclCommInitRank(&comm, aha_dist_size(), id, aha_dist_rank()));
    have_comm = 1;
    return 0;
}

int aha_dist_nccl_allreduce_float(float *device_buf, size_t count, void *stream) {
    AHA_REQUIRE(have_comm, "NCCL: aha_dist_nccl_init first");
    NCCL_CHECK(ncclAllReduce(device_buf, device_buf, count, ncclFloat, ncclSum, comm, (cudaStream_t)stream));
    return 0;
}

int aha_dist_nccl_finalize(void) {
    if (!have_comm) return 0;
    have_comm = 0;
    NCCL_CHECK(ncclCommDestroy(comm));
    return 0;
}

#else

int aha_dist_nccl_built(void) { return 0; }

static int not_built(void) {
    return aha_errorf("NCCL: this aha was built without it (CMake finds it with CUDA: nccl.h and libnccl)");
}

int aha_dist_nccl_init(void) { return not_built(); }

int aha_dist_nccl_allreduce_float(float *device_buf, size_t count, void *stream) {
    (void)device_buf; (void)count; (void)stream;
    return not_built();
}

int aha_dist_nccl_finalize(void) { return 0; }

#endif
