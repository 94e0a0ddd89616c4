/* The sandbox for untrusted programs (the code reward's Python).
 *
 * One run: the trainer clones the runner (CLONE_VM | CLONE_VFORK, like posix_spawn, so the
 * cost does not grow with the trainer's memory) into new PID, mount, network, IPC and UTS
 * namespaces (plus a user namespace when not root), each where the kernel allows. The
 * runner takes its own process group, mounts everything read-only except the scratch
 * directory and a fresh /proc, sets rlimits, drops root to a per-run user id, installs the
 * seccomp filter and execs the program with a clean environment. The trainer reads
 * stdout/stderr with caps, watches the runner through a pidfd, and at the wall-clock limit
 * (or the output cap) SIGKILLs the runner's process group. The runner is PID 1 of its
 * namespace: its death kills everything else in it, and its wait returns only once they are
 * gone. Without a PID namespace the group kill does it, since seccomp forbids setsid and
 * setpgid. The seccomp program is compiled beforehand in the parent. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "reward/reward_internal.h"

/* Per-run user ids when started as root: distinct ids keep RLIMIT_NPROC per run. */
#define SANDBOX_UID_BASE 200000

struct AhaSandbox {
    char dir[PATH_MAX];
};

void aha_sandbox_limits_default(AhaSandboxLimits *l) {
    l->wall_s = 5.0;
    l->cpu_s = 5.0;
    l->memory_mb = 256;
    l->max_procs = 32;
    l->max_file_bytes = 16L << 20;
    l->max_open_files = 64;
    l->max_output = 1u << 20;
}

/* ---- the seccomp program, compiled once ---- */

static struct sock_filter seccomp_insns[1024];
static unsigned short seccomp_len;
static char seccomp_error[256];
static pthread_once_t seccomp_once = PTHREAD_ONCE_INIT;

static int deny(scmp_filter_ctx ctx, int err, const char *name) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) return 0; /* not on this architecture */
    return seccomp_rule_add(ctx, SCMP_ACT_ERRNO(err), nr, 0);
}

static void seccomp_build(void) {
    static const char *const denied[] = {
        "connect", "bind", "listen", "accept", "accept4", "setsid", "setpgid", "ptrace",
        "process_vm_readv", "process_vm_writev", "mount", "umount2", "pivot_root", "chroot",
        "unshare", "setns", "bpf", "perf_event_open", "keyctl", "add_key", "request_key",
        "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
        "reboot", "swapon", "swapoff", "sethostname", "setdomainname", "userfaultfd",
        "open_by_handle_at", "name_to_handle_at", "io_uring_setup", "io_uring_enter",
        "io_uring_register", "fanotify_init", "mount_setattr", "move_mount", "open_tree",
        "fsopen", "fsmount", "fsconfig", "fspick",
    };
    static const unsigned long ns_flags[] = {CLONE_NEWUSER, CLONE_NEWNS,  CLONE_NEWPID,
                                             CLONE_NEWNET,  CLONE_NEWIPC, CLONE_NEWUTS,
                                             CLONE_NEWCGROUP};
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    int memfd = -1, rc = 0;
    if (!ctx) {
        snprintf(seccomp_error, sizeof seccomp_error, "seccomp_init failed");
        return;
    }
    for (size_t i = 0; i < sizeof denied / sizeof denied[0] && rc == 0; i++) rc = deny(ctx, EPERM, denied[i]);
    /* Only local (AF_UNIX) sockets: no network, whatever namespaces the kernel allowed. */
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socket), 1,
                              SCMP_A0(SCMP_CMP_NE, AF_UNIX));
    for (size_t i = 0; i < sizeof ns_flags / sizeof ns_flags[0] && rc == 0; i++)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]));
    /* clone3 hides its flags in memory; ENOSYS makes libc fall back to clone. */
    if (rc == 0) rc = deny(ctx, ENOSYS, "clone3");
    if (rc != 0) {
        snprintf(seccomp_error, sizeof seccomp_error, "seccomp rule: %s", strerror(-rc));
        goto done;
    }
    memfd = memfd_create("aha-seccomp", MFD_CLOEXEC);
    if (memfd < 0 || seccomp_export_bpf(ctx, memfd) != 0) {
        snprintf(seccomp_error, sizeof seccomp_error, "exporting the seccomp program failed");
        goto done;
    }
    off_t size = lseek(memfd, 0, SEEK_END);
    if (size <= 0 || (size_t)size > sizeof seccomp_insns || size % sizeof(struct sock_filter) ||
        pread(memfd, seccomp_insns, (size_t)size, 0) != size) {
        snprintf(seccomp_error, sizeof seccomp_error, "reading back the seccomp program failed");
        goto done;
    }
    seccomp_len = (unsigned short)(size / sizeof(struct sock_filter));
done:
    if (memfd >= 0) close(memfd);
    seccomp_release(ctx);
}

/* ---- scratch directory ---- */

AhaSandbox *aha_sandbox_create(void) {
    AhaSandbox *box = aha_calloc(1, sizeof *box);
    if (!box) return NULL;
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !tmp[0]) tmp = "/tmp";
    int n = snprintf(box->dir, sizeof box->dir, "%s/aha-sandbox-XXXXXX", tmp);
    if (n < 0 || (size_t)n >= sizeof box->dir) {
        aha_errorf("sandbox: TMPDIR path too long");
        free(box);
        return NULL;
    }
    if (!mkdtemp(box->dir)) {
        aha_error_errno("sandbox: creating a scratch directory %s", box->dir);
        free(box);
        return NULL;
    }
    return box;
}

const char *aha_sandbox_dir(const AhaSandbox *box) { return box->dir; }

int aha_sandbox_write(AhaSandbox *box, const char *name, const char *data, size_t len) {
    AHA_REQUIRE(name[0] && !strchr(name, '/') && strcmp(name, ".") && strcmp(name, ".."),
                "sandbox: bad file name '%s'", name);
    char path[PATH_MAX];
    AHA_REQUIRE(snprintf(path, sizeof path, "%s/%s", box->dir, name) < (int)sizeof path,
                "sandbox: path too long");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    AHA_CHECK_SYS(fd >= 0, "sandbox: creating %s", path);
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, data + done, len - done);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) {
            int e = errno;
            close(fd);
            errno = e;
            return aha_error_errno("sandbox: writing %s", path);
        }
        done += (size_t)w;
    }
    AHA_CHECK_SYS(close(fd) == 0, "sandbox: closing %s", path);
    return 0;
}

static int open_up(const char *path, const struct stat *st, int type, struct FTW *ftw) {
    (void)ftw;
    if (type == FTW_D || type == FTW_DNR) chmod(path, (st->st_mode & 07777) | S_IRWXU);
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw) {
    (void)st;
    (void)ftw;
    if (type == FTW_DP) rmdir(path);
    else unlink(path);
    return 0;
}

void aha_sandbox_free(AhaSandbox *box) {
    if (!box) return;
    /* A program may have made directories unreadable; open them up, then remove depth-first. */
    nftw(box->dir, open_up, 16, FTW_PHYS);
    nftw(box->dir, remove_entry, 16, FTW_PHYS | FTW_DEPTH);
    free(box);
}

void aha_sandbox_result_free(AhaSandboxResult *r) {
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

/* ---- the child side ----
 * The runner is created with clone(CLONE_VM | CLONE_VFORK), as posix_spawn does: it shares
 * the trainer's memory (no page tables copied, so the cost does not grow with the trainer's
 * size) while the calling thread waits until it has called execve. Until then it runs on its
 * own small stack and makes raw system calls only: glibc's wrappers would touch the trainer's
 * thread state (setresuid even signals every thread), and the sanitizers' interceptors the
 * shadow memory. */

#define CHILD_CODE __attribute__((no_sanitize("address", "undefined"), noinline))

typedef struct {
    int stage;      /* 0 = about to execve; else which setup step failed */
    int err;        /* errno of the failure */
    unsigned isolation;
} ChildReport;

enum { STAGE_OK, STAGE_UNSHARE_MAP, STAGE_MOUNT, STAGE_RLIMIT, STAGE_FD, STAGE_CHDIR,
       STAGE_CREDS, STAGE_PRCTL, STAGE_SECCOMP, STAGE_EXEC };
static const char *const stage_names[] = {"ok", "mapping user ids", "mounting", "rlimits",
                                          "file descriptors", "chdir", "dropping root", "prctl",
                                          "seccomp", "execve"};

typedef struct {
    const char *dir;
    const char *const *argv;
    char *const *envp;
    int stdin_fd, out_w, err_w, report_w;
    struct rlimit limits[6]; /* CPU, AS, FSIZE, NOFILE, CORE, NPROC */
    uid_t outer_uid;
    gid_t outer_gid;
    uid_t run_uid;           /* root only: the per-run id to drop to */
    unsigned isolation;      /* what this clone attempt asked for */
    char uid_map[32], gid_map[32];
    size_t uid_map_len, gid_map_len;
} ChildPlan;

static const int limit_resources[6] = {RLIMIT_CPU, RLIMIT_AS, RLIMIT_FSIZE, RLIMIT_NOFILE,
                                       RLIMIT_CORE, RLIMIT_NPROC};

CHILD_CODE static _Noreturn void child_fail(int report_fd, unsigned iso, int stage, int err) {
    ChildReport r;
    r.stage = stage;
    r.err = err;
    r.isolation = iso;
    syscall(SYS_write, report_fd, &r, sizeof r);
    syscall(SYS_exit_group, 127);
    __builtin_unreachable();
}

/* syscall() returns -1 and sets errno (the parent thread's: it is suspended, and we read the
 * value right away). */
#define CHECK(call, stage)                                                                    \
    do {                                                                                      \
        if ((call) < 0) child_fail(report_fd, iso, stage, errno);                             \
    } while (0)

CHILD_CODE static int write_proc_file(const char *path, const char *text, size_t n) {
    long fd = syscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    long w = syscall(SYS_write, fd, text, n);
    syscall(SYS_close, fd);
    return w == (long)n ? 0 : -1;
}

struct kernel_sigaction {
    void *handler;
    unsigned long flags;
    void *restorer;
    unsigned long mask;
};

CHILD_CODE static int runner_main(void *arg) {
    const ChildPlan *p = arg;
    /* The trainer's handlers must not run here: default for every caught signal. */
    for (int sig = 1; sig < 65; sig++) {
        struct kernel_sigaction old;
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        if (syscall(SYS_rt_sigaction, sig, NULL, &old, 8) == 0 && old.handler != (void *)SIG_IGN &&
            old.handler != (void *)SIG_DFL) {
            struct kernel_sigaction dfl = {.handler = (void *)SIG_DFL};
            syscall(SYS_rt_sigaction, sig, &dfl, NULL, 8);
        }
    }
    syscall(SYS_setpgid, 0, 0);
    unsigned iso = p->isolation;
    int report_fd = p->report_w;
    if (iso & AHA_SANDBOX_NS_USER) {
        /* A process that changed its ids is not dumpable, which makes its /proc/self files
         * root's: it could not write its own id maps. */
        syscall(SYS_prctl, PR_SET_DUMPABLE, 1, 0, 0, 0);
        if (write_proc_file("/proc/self/uid_map", p->uid_map, p->uid_map_len) != 0 ||
            write_proc_file("/proc/self/setgroups", "deny", 4) != 0 ||
            write_proc_file("/proc/self/gid_map", p->gid_map, p->gid_map_len) != 0)
            child_fail(report_fd, iso, STAGE_UNSHARE_MAP, errno);
    }
    if (iso & AHA_SANDBOX_NS_MOUNT) {
        struct mount_attr ro = {.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID};
        struct mount_attr rw = {.attr_clr = MOUNT_ATTR_RDONLY};
        CHECK(syscall(SYS_mount, NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), STAGE_MOUNT);
        CHECK(syscall(SYS_mount, p->dir, p->dir, NULL, MS_BIND, NULL), STAGE_MOUNT);
        if (iso & AHA_SANDBOX_NS_PID)
            CHECK(syscall(SYS_mount, "proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL),
                  STAGE_MOUNT);
        CHECK(syscall(SYS_mount_setattr, AT_FDCWD, "/", AT_RECURSIVE, &ro, sizeof ro), STAGE_MOUNT);
        CHECK(syscall(SYS_mount_setattr, AT_FDCWD, p->dir, 0, &rw, sizeof rw), STAGE_MOUNT);
    }
    for (int i = 0; i < 6; i++)
        CHECK(syscall(SYS_prlimit64, 0, limit_resources[i], &p->limits[i], NULL), STAGE_RLIMIT);
    /* stdin, stdout, stderr; the report pipe as fd 3 (closed by execve); nothing else. */
    CHECK(syscall(SYS_dup3, p->stdin_fd, 0, 0), STAGE_FD);
    CHECK(syscall(SYS_dup3, p->out_w, 1, 0), STAGE_FD);
    CHECK(syscall(SYS_dup3, p->err_w, 2, 0), STAGE_FD);
    if (report_fd != 3) {
        CHECK(syscall(SYS_dup3, report_fd, 3, O_CLOEXEC), STAGE_FD);
        report_fd = 3;
    }
    CHECK(syscall(SYS_close_range, 4u, ~0u, 0u), STAGE_FD);
    if (p->run_uid != 0)
        CHECK(syscall(SYS_fchownat, AT_FDCWD, p->dir, p->run_uid, p->run_uid, 0), STAGE_CREDS);
    CHECK(syscall(SYS_chdir, p->dir), STAGE_CHDIR);
    if (p->run_uid != 0) {
        CHECK(syscall(SYS_setgroups, 0, NULL), STAGE_CREDS);
        CHECK(syscall(SYS_setresgid, p->run_uid, p->run_uid, p->run_uid), STAGE_CREDS);
        CHECK(syscall(SYS_setresuid, p->run_uid, p->run_uid, p->run_uid), STAGE_CREDS);
        iso |= AHA_SANDBOX_DROPPED_ROOT;
    }
    /* After the credential change, which clears it. */
    CHECK(syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0), STAGE_PRCTL);
    CHECK(syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), STAGE_PRCTL);
    struct sock_fprog prog = {.len = seccomp_len, .filter = seccomp_insns};
    CHECK(syscall(SYS_prctl, PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0), STAGE_SECCOMP);
    iso |= AHA_SANDBOX_SECCOMP;
    ChildReport ok;
    ok.stage = STAGE_OK;
    ok.err = 0;
    ok.isolation = iso;
    syscall(SYS_write, report_fd, &ok, sizeof ok);
    unsigned long empty_mask = 0;
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &empty_mask, NULL, 8);
    syscall(SYS_execve, p->argv[0], p->argv, p->envp);
    child_fail(report_fd, iso, STAGE_EXEC, errno);
}

/* "<id> <id> 1"; its length. */
static size_t id_map_line(char *buf, size_t cap, unsigned id) {
    return (size_t)snprintf(buf, cap, "%u %u 1", id, id);
}

static atomic_uint run_counter;

/* Clones the runner with as much isolation as the kernel grants; its pid, or -1. */
static pid_t clone_runner(ChildPlan *plan) {
    static const int root_flags[] = {
        CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS, CLONE_NEWNET, 0};
    static const int user_flags[] = {
        CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS, 0};
    const int *flags = plan->outer_uid == 0 ? root_flags : user_flags;
    int n_flags = plan->outer_uid == 0 ? 3 : 2;
    size_t stack_size = 256 * 1024;
    char *stack = mmap(NULL, stack_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) return -1;
    /* No signal handler of ours may run on the child's stack before it resets them. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = -1;
    int saved = 0;
    for (int i = 0; i < n_flags; i++) {
        int f = flags[i];
        plan->isolation = ((f & CLONE_NEWUSER) ? AHA_SANDBOX_NS_USER : 0) |
                          ((f & CLONE_NEWPID) ? AHA_SANDBOX_NS_PID : 0) |
                          ((f & CLONE_NEWNET) ? AHA_SANDBOX_NS_NET : 0) |
                          ((f & CLONE_NEWNS) ? AHA_SANDBOX_NS_MOUNT : 0);
        pid = clone(runner_main, stack + stack_size, CLONE_VM | CLONE_VFORK | SIGCHLD | f, plan);
        if (pid >= 0) break;
        saved = errno;
        if (saved != EPERM && saved != EINVAL && saved != ENOSPC && saved != EUSERS) break;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    munmap(stack, stack_size);
    if (pid < 0) errno = saved;
    return pid;
}

/* ---- the parent side ---- */

static int fd_above_stdio(int fd) {
    if (fd > 2) return fd;
    int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    close(fd);
    return moved;
}

static int make_pipe(int fds[2]) {
    if (pipe2(fds, O_CLOEXEC) != 0) return -1;
    fds[0] = fd_above_stdio(fds[0]);
    fds[1] = fd_above_stdio(fds[1]);
    return fds[0] >= 0 && fds[1] >= 0 ? 0 : -1;
}

typedef struct {
    int fd;
    char *buf;
    size_t len, cap, limit;
    int overflow;
} Capture;

/* Reads what is there (non-blocking); returns 1 at EOF. */
static int capture_read(Capture *c) {
    char chunk[65536];
    for (;;) {
        ssize_t n = read(c->fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return 0; /* EAGAIN */
        if (n == 0) return 1;
        size_t keep = (size_t)n;
        if (c->len + keep > c->limit) {
            keep = c->limit - c->len;
            c->overflow = 1;
        }
        if (c->len + keep + 1 > c->cap) {
            size_t cap = c->cap ? c->cap : 4096;
            while (cap < c->len + keep + 1) cap *= 2;
            char *grown = realloc(c->buf, cap);
            if (!grown) {
                c->overflow = 1;
                return 0;
            }
            c->buf = grown;
            c->cap = cap;
        }
        memcpy(c->buf + c->len, chunk, keep);
        c->len += keep;
        if (c->overflow) return 0;
    }
}

static char *capture_take(Capture *c, size_t *len) {
    char *s = c->buf ? c->buf : malloc(1);
    if (s) s[c->len] = '\0';
    *len = s ? c->len : 0;
    c->buf = NULL;
    return s;
}

/* Reads the runner's setup reports (non-blocking: the runner has exec'd or exited, so they
 * are all in the pipe, and a fork elsewhere in this process may hold the write end). */
static size_t reports_read(int fd, ChildReport *reports, size_t cap) {
    size_t got = 0;
    for (;;) {
        ssize_t n = read(fd, (char *)reports + got, cap * sizeof *reports - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
    }
    return got / sizeof *reports;
}

int aha_sandbox_run(AhaSandbox *box, const char *const *argv, const char *stdin_name,
                    const AhaSandboxLimits *limits, AhaSandboxResult *result) {
    memset(result, 0, sizeof *result);
    pthread_once(&seccomp_once, seccomp_build);
    AHA_REQUIRE(seccomp_len > 0, "sandbox: no seccomp filter (%s); refusing to run untrusted code",
                seccomp_error);
    AHA_REQUIRE(argv && argv[0] && argv[0][0] == '/', "sandbox: the program must be an absolute path");

    char home[PATH_MAX + 16], tmpdir[PATH_MAX + 16];
    snprintf(home, sizeof home, "HOME=%s", box->dir);
    snprintf(tmpdir, sizeof tmpdir, "TMPDIR=%s", box->dir);
    char *envp[] = {"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", "LC_ALL=C.UTF-8", home,
                    tmpdir, NULL};

    int stdin_fd;
    if (stdin_name) {
        char path[PATH_MAX];
        AHA_REQUIRE(!strchr(stdin_name, '/'), "sandbox: bad stdin file name '%s'", stdin_name);
        AHA_REQUIRE(snprintf(path, sizeof path, "%s/%s", box->dir, stdin_name) < (int)sizeof path,
                    "sandbox: stdin path too long");
        stdin_fd = open(path, O_RDONLY | O_CLOEXEC);
        AHA_CHECK_SYS(stdin_fd >= 0, "sandbox: opening %s", path);
    } else {
        stdin_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        AHA_CHECK_SYS(stdin_fd >= 0, "sandbox: opening /dev/null");
    }
    stdin_fd = fd_above_stdio(stdin_fd);
    int out[2] = {-1, -1}, err[2] = {-1, -1}, rep[2] = {-1, -1};
    if (stdin_fd < 0 || make_pipe(out) || make_pipe(err) || make_pipe(rep)) {
        int e = errno;
        if (stdin_fd >= 0) close(stdin_fd);
        for (int i = 0; i < 2; i++) {
            if (out[i] >= 0) close(out[i]);
            if (err[i] >= 0) close(err[i]);
            if (rep[i] >= 0) close(rep[i]);
        }
        errno = e;
        return aha_error_errno("sandbox: creating pipes");
    }
    ChildPlan plan = {.dir = box->dir, .argv = argv, .envp = envp, .stdin_fd = stdin_fd,
                      .out_w = out[1], .err_w = err[1], .report_w = rep[1],
                      .outer_uid = geteuid(), .outer_gid = getegid()};
    rlim_t cpu = (rlim_t)ceil(limits->cpu_s > 0 ? limits->cpu_s : 1);
    rlim_t mem = (rlim_t)limits->memory_mb << 20;
    /* CPU soft = hard: the kernel's SIGKILL; the SIGXCPU of a lower soft limit is ignored by
     * the runner, which is PID 1 of its namespace. */
    rlim_t values[6][2] = {{cpu, cpu}, {mem, mem},
                           {(rlim_t)limits->max_file_bytes, (rlim_t)limits->max_file_bytes},
                           {(rlim_t)limits->max_open_files, (rlim_t)limits->max_open_files},
                           {0, 0}, {(rlim_t)limits->max_procs, (rlim_t)limits->max_procs}};
    for (int i = 0; i < 6; i++) plan.limits[i] = (struct rlimit){values[i][0], values[i][1]};
    if (plan.outer_uid == 0) /* a distinct id per concurrent run: RLIMIT_NPROC per run */
        plan.run_uid = SANDBOX_UID_BASE + (((unsigned)getpid() & 0xffffu) << 10) +
                       (atomic_fetch_add(&run_counter, 1u) & 1023u);
    plan.uid_map_len = id_map_line(plan.uid_map, sizeof plan.uid_map, plan.outer_uid);
    plan.gid_map_len = id_map_line(plan.gid_map, sizeof plan.gid_map, plan.outer_gid);
    double start = reward_now();
    pid_t runner = clone_runner(&plan);
    int clone_errno = errno;
    close(stdin_fd);
    close(out[1]);
    close(err[1]);
    close(rep[1]);
    if (runner < 0) {
        close(out[0]), close(err[0]), close(rep[0]);
        errno = clone_errno;
        return aha_error_errno("sandbox: clone");
    }
    setpgid(runner, runner); /* also done by the runner: the group exists either way */
    result->group_id = runner;
    ChildReport reports[4];
    size_t n_reports = reports_read(rep[0], reports, 4);
    close(rep[0]);
    ChildReport setup = {.stage = STAGE_EXEC, .err = ECHILD};
    for (size_t i = 0; i < n_reports; i++) setup = reports[i]; /* the last word counts */
    result->isolation = setup.isolation;
    if (setup.stage != STAGE_OK) {
        int status;
        kill(-runner, SIGKILL);
        while (waitpid(runner, &status, 0) < 0 && errno == EINTR) {}
        close(out[0]), close(err[0]);
        errno = setup.err;
        return aha_error_errno("sandbox: setting up the child failed at %s", stage_names[setup.stage]);
    }
    int pidfd = (int)syscall(SYS_pidfd_open, runner, 0);
    Capture cap[2] = {{.fd = out[0], .limit = limits->max_output},
                      {.fd = err[0], .limit = limits->max_output}};
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    fcntl(err[0], F_SETFL, O_NONBLOCK);
    int open_streams[2] = {1, 1};
    int timed_out = 0, overflow = 0, exited = 0;
    double deadline = start + limits->wall_s;
    while (!exited) {
        double left = deadline - reward_now();
        if (left <= 0) {
            timed_out = 1;
            break;
        }
        struct pollfd pf[4];
        int np = 0, idx[4];
        for (int s = 0; s < 2; s++) {
            if (open_streams[s]) {
                pf[np] = (struct pollfd){.fd = cap[s].fd, .events = POLLIN};
                idx[np++] = s;
            }
        }
        if (pidfd >= 0) {
            pf[np] = (struct pollfd){.fd = pidfd, .events = POLLIN};
            idx[np++] = 2;
        }
        int wait_ms = (int)(left * 1000) + 1;
        if (pidfd < 0 && wait_ms > 10) wait_ms = 10; /* no pidfd: poll the child's state */
        int ready = poll(pf, (nfds_t)np, wait_ms);
        if (ready < 0 && errno != EINTR) break;
        for (int i = 0; i < np && ready > 0; i++) {
            if (!pf[i].revents) continue;
            if (idx[i] == 2) exited = 1;
            else if (capture_read(&cap[idx[i]])) open_streams[idx[i]] = 0;
        }
        if (cap[0].overflow || cap[1].overflow) {
            overflow = 1;
            break;
        }
        if (pidfd < 0) {
            siginfo_t si = {0};
            if (waitid(P_PID, (id_t)runner, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == runner)
                exited = 1;
        }
    }
    /* What the runner wrote before it ended is still in the pipes. */
    if (exited) {
        for (int s = 0; s < 2; s++)
            if (open_streams[s]) capture_read(&cap[s]);
        overflow = cap[0].overflow || cap[1].overflow;
    }
    /* The group dies (with a PID namespace, the runner's death alone kills everything in it,
     * and its wait returns only when they are gone); then the runner is reaped. */
    kill(-runner, SIGKILL);
    int status = 0;
    while (waitpid(runner, &status, 0) < 0 && errno == EINTR) {}
    if (!(result->isolation & AHA_SANDBOX_NS_PID)) {
        /* Without a PID namespace orphans go to init; give it a moment to reap them. */
        for (int i = 0; i < 200 && !(kill(-runner, SIGKILL) != 0 && errno == ESRCH); i++) usleep(1000);
    }
    result->wall_s = reward_now() - start;
    if (pidfd >= 0) close(pidfd);
    close(out[0]);
    close(err[0]);
    result->out = capture_take(&cap[0], &result->out_len);
    result->err = capture_take(&cap[1], &result->err_len);
    free(cap[0].buf);
    free(cap[1].buf);
    if (!result->out || !result->err) {
        aha_sandbox_result_free(result);
        return aha_errorf("sandbox: out of memory keeping the output");
    }
    if (overflow) {
        result->outcome = AHA_SANDBOX_OUTPUT_LIMIT;
    } else if (timed_out) {
        result->outcome = AHA_SANDBOX_TIMEOUT;
    } else if (WIFSIGNALED(status)) {
        result->outcome = AHA_SANDBOX_SIGNALED;
        result->exit_code = WTERMSIG(status);
    } else {
        result->outcome = AHA_SANDBOX_EXITED;
        result->exit_code = WEXITSTATUS(status);
    }
    return 0;
}
