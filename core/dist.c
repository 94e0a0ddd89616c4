/* The communication layer: MPI when built with it and launched by an MPI launcher, else
 * one process (include/aha/dist.h). */
#include "aha/dist.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aha/error.h"

static struct {
    int initialized;  /* aha_dist_init ran */
    int joined;       /* MPI_Init_thread was called by us */
    int size, rank, local_rank, local_size;
    int expert_size, expert_rank;
    double comm_seconds;
} dist = {.size = 1, .local_size = 1, .expert_size = 1};

#ifdef AHA_HAVE_MPI
#include <mpi.h>
static MPI_Comm expert_comm = MPI_COMM_NULL;
#endif

#ifdef AHA_HAVE_MPI
static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
#endif

int aha_dist_built_with_mpi(void) {
#ifdef AHA_HAVE_MPI
    return 1;
#else
    return 0;
#endif
}

static const char *const launcher_vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"};

int aha_dist_launched(void) {
    for (size_t i = 0; i < sizeof launcher_vars / sizeof launcher_vars[0]; i++)
        if (getenv(launcher_vars[i])) return 1;
    return 0;
}

int aha_dist_size(void) { return dist.size; }
int aha_dist_expert_size(void) { return dist.expert_size; }
int aha_dist_expert_rank(void) { return dist.expert_rank; }
int aha_dist_rank(void) { return dist.rank; }
int aha_dist_local_rank(void) { return dist.local_rank; }
int aha_dist_local_size(void) { return dist.local_size; }
double aha_dist_comm_seconds(void) { return dist.comm_seconds; }

size_t aha_dist_share_lo(size_t count, int r, int n) {
    return (size_t)((unsigned long long)count * (unsigned long long)r / (unsigned long long)n);
}

#ifdef AHA_HAVE_MPI

static int mpi_fail(const char *call, int code) {
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) snprintf(text, sizeof text, "error %d", code);
    return aha_errorf("%s: %s", call, text);
}

#define MPI_CHECK(call)                                                                         \
    do {                                                                                        \
        int mpi_code_ = (call);                                                                 \
        if (mpi_code_ != MPI_SUCCESS) return mpi_fail(#call, mpi_code_);                        \
    } while (0)

static int join_job(void) {
    int provided = 0;
    MPI_CHECK(MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &provided));
    dist.joined = 1;
    /* errors come back as codes, to be reported with their call; a rank that cannot go on
     * ends the job with aha_dist_abort */
    MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
    if (provided < MPI_THREAD_SERIALIZED)
        return aha_errorf("MPI_Init_thread: the MPI library gives thread level %d, aha needs "
                          "MPI_THREAD_SERIALIZED (%d)", provided, MPI_THREAD_SERIALIZED);
    MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &dist.size));
    MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &dist.rank));
    MPI_Comm local;
    MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, dist.rank, MPI_INFO_NULL, &local));
    int rc = MPI_Comm_rank(local, &dist.local_rank);
    if (rc == MPI_SUCCESS) rc = MPI_Comm_size(local, &dist.local_size);
    int rc_free = MPI_Comm_free(&local);
    if (rc != MPI_SUCCESS) return mpi_fail("MPI_Comm_rank/size (host communicator)", rc);
    if (rc_free != MPI_SUCCESS) return mpi_fail("MPI_Comm_free", rc_free);
    return 0;
}

static MPI_Datatype mpi_type(AhaDistType t) {
    switch (t) {
    case AHA_DIST_FLOAT: return MPI_FLOAT;
    case AHA_DIST_DOUBLE: return MPI_DOUBLE;
    case AHA_DIST_INT: return MPI_INT;
    case AHA_DIST_INT64: return MPI_INT64_T;
    }
    return MPI_DATATYPE_NULL;
}

static size_t type_size(AhaDistType t) {
    switch (t) {
    case AHA_DIST_FLOAT: return sizeof(float);
    case AHA_DIST_DOUBLE: return sizeof(double);
    case AHA_DIST_INT: return sizeof(int);
    case AHA_DIST_INT64: return sizeof(int64_t);
    }
    return 1;
}

static MPI_Op mpi_op(AhaDistOp op) {
    return op == AHA_DIST_MAX ? MPI_MAX : op == AHA_DIST_MIN ? MPI_MIN : MPI_SUM;
}

#endif

int aha_dist_init(void) {
    if (dist.initialized) return 0;
    if (aha_dist_launched()) {
#ifdef AHA_HAVE_MPI
        dist.initialized = 1; /* MPI_Init_thread may be called once only */
        return join_job();
#else
        const char *n = getenv("OMPI_COMM_WORLD_SIZE");
        if (!n) n = getenv("PMI_SIZE");
        if (n && atoi(n) > 1)
            return aha_errorf("launched as one of %s processes, but this aha was built without MPI "
                              "(rebuild with libopenmpi-dev installed, -DAHA_MPI=ON)", n);
#endif
    }
    dist.initialized = 1;
    return 0;
}

int aha_dist_finalize(void) {
#ifdef AHA_HAVE_MPI
    if (expert_comm != MPI_COMM_NULL) MPI_CHECK(MPI_Comm_free(&expert_comm));
    dist.expert_size = 1;
    dist.expert_rank = 0;
    if (dist.joined) {
        dist.joined = 0;
        MPI_CHECK(MPI_Finalize());
    }
#endif
    return 0;
}

void aha_dist_abort(int code) {
#ifdef AHA_HAVE_MPI
    if (dist.joined && dist.size > 1) MPI_Abort(MPI_COMM_WORLD, code);
#endif
    exit(code);
}

/* MPI counts are int: big buffers go in pieces of at most this many elements. */
#define MAX_PIECE (1u << 30)

int aha_dist_allreduce(void *buf, size_t count, AhaDistType type, AhaDistOp op) {
    if (dist.size == 1 || count == 0) return 0;
#ifdef AHA_HAVE_MPI
    double t0 = now();
    char *p = buf;
    for (size_t done = 0; done < count;) {
        size_t n = count - done < MAX_PIECE ? count - done : MAX_PIECE;
        MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, p + done * type_size(type), (int)n, mpi_type(type), mpi_op(op),
                                MPI_COMM_WORLD));
        done += n;
    }
    dist.comm_seconds += now() - t0;
#else
    (void)buf; (void)type; (void)op;
#endif
    return 0;
}

static int one_process_gather(const void *send, size_t len, char **out, size_t *lens) {
    *out = aha_malloc(len > 0 ? len : 1);
    AHA_CHECK_ALLOC(*out);
    if (len > 0) memcpy(*out, send, len);
    lens[0] = len;
    return 0;
}

#ifdef AHA_HAVE_MPI
/* Lengths gathered, and their displacements checked against int. */
static int byte_layout(const size_t *lens, int **counts, int **displs, size_t *total) {
    *counts = aha_malloc((size_t)dist.size * sizeof **counts);
    *displs = aha_malloc((size_t)dist.size * sizeof **displs);
    if (!*counts || !*displs) {
        free(*counts);
        free(*displs);
        return -1;
    }
    size_t off = 0;
    for (int r = 0; r < dist.size; r++) {
        if (lens[r] > INT_MAX || off > INT_MAX) {
            free(*counts);
            free(*displs);
            return aha_errorf("gathering %zu bytes: MPI counts are int; more than 2 GiB in one gather", off + lens[r]);
        }
        (*counts)[r] = (int)lens[r];
        (*displs)[r] = (int)off;
        off += lens[r];
    }
    *total = off;
    return 0;
}
#endif

static int gather_bytes(const void *send, size_t len, int root, char **out, size_t *lens) {
    if (dist.size == 1) return one_process_gather(send, len, out, lens);
#ifdef AHA_HAVE_MPI
    double t0 = now();
    AHA_REQUIRE(len <= INT_MAX, "gathering %zu bytes from one rank: more than 2 GiB", len);
    uint64_t mine = len;
    uint64_t *all = aha_malloc((size_t)dist.size * sizeof *all);
    AHA_CHECK_ALLOC(all);
    int rc = root < 0 ? MPI_Allgather(&mine, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, MPI_COMM_WORLD)
                      : MPI_Gather(&mine, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, root, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) {
        free(all);
        return mpi_fail(root < 0 ? "MPI_Allgather (lengths)" : "MPI_Gather (lengths)", rc);
    }
    int *counts = NULL, *displs = NULL;
    size_t total = 0;
    int receives = root < 0 || root == dist.rank;
    if (receives) {
        for (int r = 0; r < dist.size; r++) lens[r] = (size_t)all[r];
        if (byte_layout(lens, &counts, &displs, &total) != 0) {
            free(all);
            return -1;
        }
    }
    free(all);
    char *buf = receives ? aha_malloc(total > 0 ? total : 1) : NULL;
    if (receives && !buf) {
        free(counts);
        free(displs);
        return -1;
    }
    rc = root < 0 ? MPI_Allgatherv(send, (int)len, MPI_BYTE, buf, counts, displs, MPI_BYTE, MPI_COMM_WORLD)
                  : MPI_Gatherv(send, (int)len, MPI_BYTE, buf, counts, displs, MPI_BYTE, root, MPI_COMM_WORLD);
    free(counts);
    free(displs);
    if (rc != MPI_SUCCESS) {
        free(buf);
        return mpi_fail(root < 0 ? "MPI_Allgatherv" : "MPI_Gatherv", rc);
    }
    *out = buf;
    dist.comm_seconds += now() - t0;
    return 0;
#else
    (void)root;
    return one_process_gather(send, len, out, lens);
#endif
}

int aha_dist_allgather_bytes(const void *send, size_t len, char **out, size_t *lens) {
    return gather_bytes(send, len, -1, out, lens);
}

int aha_dist_gather_bytes(const void *send, size_t len, int root, char **out, size_t *lens) {
    *out = NULL;
    AHA_REQUIRE(root >= 0 && root < dist.size, "gather: root %d of %d ranks", root, dist.size);
    return gather_bytes(send, len, root, out, lens);
}

int aha_dist_broadcast(void *buf, size_t bytes, int root) {
    AHA_REQUIRE(root >= 0 && root < dist.size, "broadcast: root %d of %d ranks", root, dist.size);
    if (dist.size == 1 || bytes == 0) return 0;
#ifdef AHA_HAVE_MPI
    double t0 = now();
    char *p = buf;
    for (size_t done = 0; done < bytes;) {
        size_t n = bytes - done < MAX_PIECE ? bytes - done : MAX_PIECE;
        MPI_CHECK(MPI_Bcast(p + done, (int)n, MPI_BYTE, root, MPI_COMM_WORLD));
        done += n;
    }
    dist.comm_seconds += now() - t0;
#else
    (void)buf;
#endif
    return 0;
}

#ifdef AHA_HAVE_MPI
static int int_counts(const size_t *counts, int **out, int **displs) {
    *out = aha_malloc((size_t)dist.size * sizeof **out);
    *displs = aha_malloc((size_t)dist.size * sizeof **displs);
    if (!*out || !*displs) {
        free(*out);
        free(*displs);
        return -1;
    }
    size_t off = 0;
    for (int r = 0; r < dist.size; r++) {
        if (counts[r] > INT_MAX || off > INT_MAX) {
            free(*out);
            free(*displs);
            return aha_errorf("%zu elements in one collective: MPI counts and offsets are int", off + counts[r]);
        }
        (*out)[r] = (int)counts[r];
        (*displs)[r] = (int)off;
        off += counts[r];
    }
    return 0;
}
#endif

int aha_dist_reduce_scatter_float(float *buf, const size_t *counts) {
    if (dist.size == 1) return 0;
#ifdef AHA_HAVE_MPI
    double t0 = now();
    int *c = NULL, *d = NULL;
    AHA_TRY(int_counts(counts, &c, &d));
    /* MPI_IN_PLACE leaves this rank's sum at the start of buf */
    int rc = MPI_Reduce_scatter(MPI_IN_PLACE, buf, c, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    size_t off = (size_t)d[dist.rank], n = (size_t)c[dist.rank];
    free(c);
    free(d);
    if (rc != MPI_SUCCESS) return mpi_fail("MPI_Reduce_scatter", rc);
    if (off > 0) memmove(buf + off, buf, n * sizeof *buf);
    dist.comm_seconds += now() - t0;
#else
    (void)buf; (void)counts;
#endif
    return 0;
}

int aha_dist_allgather_float(float *buf, const size_t *counts) {
    if (dist.size == 1) return 0;
#ifdef AHA_HAVE_MPI
    double t0 = now();
    int *c = NULL, *d = NULL;
    AHA_TRY(int_counts(counts, &c, &d));
    int rc = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, c, d, MPI_FLOAT, MPI_COMM_WORLD);
    free(c);
    free(d);
    if (rc != MPI_SUCCESS) return mpi_fail("MPI_Allgatherv", rc);
    dist.comm_seconds += now() - t0;
#else
    (void)buf; (void)counts;
#endif
    return 0;
}

int aha_dist_alltoallv_bytes(const void *send, const size_t *send_counts, char **recv, size_t *recv_counts) {
    if (dist.size == 1) return one_process_gather(send, send_counts[0], recv, recv_counts);
#ifdef AHA_HAVE_MPI
    double t0 = now();
    size_t n = (size_t)dist.size;
    uint64_t *sc = aha_malloc(n * sizeof *sc), *rcv = aha_malloc(n * sizeof *rcv);
    if (!sc || !rcv) {
        free(sc);
        free(rcv);
        return -1;
    }
    for (size_t r = 0; r < n; r++) sc[r] = send_counts[r];
    int rc = MPI_Alltoall(sc, 1, MPI_UINT64_T, rcv, 1, MPI_UINT64_T, MPI_COMM_WORLD);
    for (size_t r = 0; r < n; r++) recv_counts[r] = (size_t)rcv[r];
    free(sc);
    free(rcv);
    if (rc != MPI_SUCCESS) return mpi_fail("MPI_Alltoall (counts)", rc);
    int *s_c = NULL, *s_d = NULL, *r_c = NULL, *r_d = NULL;
    if (int_counts(send_counts, &s_c, &s_d) != 0) return -1;
    if (int_counts(recv_counts, &r_c, &r_d) != 0) {
        free(s_c);
        free(s_d);
        return -1;
    }
    size_t total = (size_t)r_d[n - 1] + recv_counts[n - 1];
    char *buf = aha_malloc(total > 0 ? total : 1);
    rc = buf ? MPI_Alltoallv(send, s_c, s_d, MPI_BYTE, buf, r_c, r_d, MPI_BYTE, MPI_COMM_WORLD) : MPI_SUCCESS;
    free(s_c);
    free(s_d);
    free(r_c);
    free(r_d);
    if (!buf) return -1;
    if (rc != MPI_SUCCESS) {
        free(buf);
        return mpi_fail("MPI_Alltoallv", rc);
    }
    *recv = buf;
    dist.comm_seconds += now() - t0;
    return 0;
#else
    return one_process_gather(send, send_counts[0], recv, recv_counts);
#endif
}

int aha_dist_barrier(void) {
    if (dist.size == 1) return 0;
#ifdef AHA_HAVE_MPI
    double t0 = now();
    MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
    dist.comm_seconds += now() - t0;
#endif
    return 0;
}

int aha_dist_expert_init(int size) {
    AHA_REQUIRE(size >= 1 && dist.size % size == 0,
                "distributed.expert_parallel = %d: it must divide the number of processes (%d)", size, dist.size);
    if (size == dist.expert_size) return 0;
#ifdef AHA_HAVE_MPI
    AHA_REQUIRE(expert_comm == MPI_COMM_NULL, "expert groups: already made with size %d", dist.expert_size);
    MPI_CHECK(MPI_Comm_split(MPI_COMM_WORLD, dist.rank / size, dist.rank, &expert_comm));
    MPI_CHECK(MPI_Comm_set_errhandler(expert_comm, MPI_ERRORS_ARE_FATAL));
    MPI_CHECK(MPI_Comm_rank(expert_comm, &dist.expert_rank));
    dist.expert_size = size;
#endif
    return 0;
}

void aha_dist_expert_allgather_float(float *buf, const size_t *counts) {
    if (dist.expert_size == 1) return;
#ifdef AHA_HAVE_MPI
    double t0 = now();
    int c[1024], d[1024], off = 0;
    for (int r = 0; r < dist.expert_size && r < 1024; r++) {
        c[r] = (int)counts[r]; /* the layer's rows: far below 2^31 floats */
        d[r] = off;
        off += c[r];
    }
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, c, d, MPI_FLOAT, expert_comm);
    dist.comm_seconds += now() - t0;
#else
    (void)buf; (void)counts;
#endif
}
