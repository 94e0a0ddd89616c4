/* The sandbox for untrusted programs (the code reward's Python).
 *
 * Layout of one run:
 *   trainer --fork--> keeper: own process group, child subreaper; unshare(PID, mount, net,
 *                     IPC, UTS namespaces; plus user when not root); forks the runner, tells
 *                     the trainer its pid, waits for it, then kills and reaps whatever is
 *                     left of the runner's process group, and reports the exit status
 *           --fork--> runner: its own process group; PID 1 of the new PID namespace; mounts
 *                     everything read-only except the scratch directory, a fresh /proc;
 *                     rlimits; drops root to a per-run user id; seccomp; execve with a clean
 *                     environment.
 * The trainer reads stdout/stderr with caps, watches the keeper through a pidfd, and at the
 * wall-clock limit (or output cap) SIGKILLs the runner's process group. When the runner (PID
 * 1 of its namespace) dies, the kernel kills everything else in the namespace; without a PID
 * namespace the group kill does it (seccomp forbids setsid/setpgid, so nothing leaves the
 * group) and the keeper, as subreaper, reaps the orphans, so that nothing is left, not even a
 * zombie, when aha_sandbox_run returns. Between fork and execve only async-signal-safe calls
 * are made: the seccomp program is compiled beforehand in the parent. */
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

/* ---- the child side: async-signal-safe only ---- */

typedef struct {
    int stage;      /* 0 = about to execve; else which setup step failed */
    int err;        /* errno of the failure */
    unsigned isolation;
    int wait_status; /* STAGE_EXIT: the runner's status from waitpid; STAGE_PID: its pid */
} ChildReport;

enum { STAGE_EXIT = -1, STAGE_PID = -2 }; /* the keeper's reports */
enum { STAGE_OK, STAGE_UNSHARE_MAP, STAGE_FORK, STAGE_MOUNT, STAGE_RLIMIT, STAGE_FD,
       STAGE_CHDIR, STAGE_CREDS, STAGE_PRCTL, STAGE_SECCOMP, STAGE_EXEC };
static const char *const stage_names[] = {"ok", "mapping user ids", "fork", "mounting", "rlimits",
                                          "file descriptors", "chdir", "dropping root", "prctl",
                                          "seccomp", "execve"};

typedef struct {
    const char *dir;
    const char *const *argv;
    char *const *envp;
    int stdin_fd, out_w, err_w, report_w;
    const AhaSandboxLimits *limits;
    uid_t outer_uid;
    gid_t outer_gid;
    pid_t parent_pid;
} ChildPlan;

static void report(int fd, int stage, int err, unsigned isolation) {
    ChildReport r = {.stage = stage, .err = err, .isolation = isolation};
    ssize_t ignored = write(fd, &r, sizeof r);
    (void)ignored;
}

static _Noreturn void child_fail(const ChildPlan *p, int stage, unsigned isolation) {
    report(p->report_w, stage, errno, isolation);
    _exit(127);
}

static int write_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* "<id> <id> 1" into buf without snprintf (not async-signal-safe). */
static void id_map_line(char *buf, unsigned id) {
    char digits[16];
    int n = 0;
    do {
        digits[n++] = (char)('0' + id % 10);
        id /= 10;
    } while (id);
    char *p = buf;
    for (int rep = 0; rep < 2; rep++) {
        for (int i = n - 1; i >= 0; i--) *p++ = digits[i];
        *p++ = ' ';
    }
    *p++ = '1';
    *p = '\0';
}

static unsigned keeper_unshare(const ChildPlan *p) {
    const int base = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS;
    if (p->outer_uid == 0) {
        if (unshare(base) == 0) return AHA_SANDBOX_NS_PID | AHA_SANDBOX_NS_NET | AHA_SANDBOX_NS_MOUNT;
        if (unshare(CLONE_NEWNET) == 0) return AHA_SANDBOX_NS_NET;
        return 0;
    }
    if (unshare(CLONE_NEWUSER | base) == 0) {
        /* A process that changed its ids (setuid) is not dumpable, which makes its
         * /proc/self files root's: it could not write its own id maps. */
        prctl(PR_SET_DUMPABLE, 1);
        char line[64];
        id_map_line(line, p->outer_uid);
        if (write_file("/proc/self/uid_map", line) != 0) child_fail(p, STAGE_UNSHARE_MAP, 0);
        if (write_file("/proc/self/setgroups", "deny") != 0) child_fail(p, STAGE_UNSHARE_MAP, 0);
        id_map_line(line, p->outer_gid);
        if (write_file("/proc/self/gid_map", line) != 0) child_fail(p, STAGE_UNSHARE_MAP, 0);
        return AHA_SANDBOX_NS_USER | AHA_SANDBOX_NS_PID | AHA_SANDBOX_NS_NET | AHA_SANDBOX_NS_MOUNT;
    }
    return 0;
}

static int set_limit(int resource, rlim_t soft, rlim_t hard) {
    struct rlimit rl = {.rlim_cur = soft, .rlim_max = hard};
    return setrlimit(resource, &rl);
}

static _Noreturn void runner_main(const ChildPlan *p, unsigned iso, uid_t run_uid) {
    const AhaSandboxLimits *l = p->limits;
    setpgid(0, 0);
    if (iso & AHA_SANDBOX_NS_MOUNT) {
        struct mount_attr ro = {.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID};
        struct mount_attr rw = {.attr_clr = MOUNT_ATTR_RDONLY};
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
            mount(p->dir, p->dir, NULL, MS_BIND, NULL) != 0)
            child_fail(p, STAGE_MOUNT, iso);
        if (iso & AHA_SANDBOX_NS_PID) {
            if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0)
                child_fail(p, STAGE_MOUNT, iso);
        }
        if (syscall(SYS_mount_setattr, AT_FDCWD, "/", AT_RECURSIVE, &ro, sizeof ro) != 0 ||
            syscall(SYS_mount_setattr, AT_FDCWD, p->dir, 0, &rw, sizeof rw) != 0)
            child_fail(p, STAGE_MOUNT, iso);
    }
    rlim_t cpu = (rlim_t)ceil(l->cpu_s > 0 ? l->cpu_s : 1);
    rlim_t mem = (rlim_t)l->memory_mb << 20;
    if (set_limit(RLIMIT_CPU, cpu, cpu + 1) || set_limit(RLIMIT_AS, mem, mem) ||
        set_limit(RLIMIT_FSIZE, (rlim_t)l->max_file_bytes, (rlim_t)l->max_file_bytes) ||
        set_limit(RLIMIT_NOFILE, (rlim_t)l->max_open_files, (rlim_t)l->max_open_files) ||
        set_limit(RLIMIT_CORE, 0, 0) ||
        set_limit(RLIMIT_NPROC, (rlim_t)l->max_procs, (rlim_t)l->max_procs))
        child_fail(p, STAGE_RLIMIT, iso);
    /* stdin, stdout, stderr; the report pipe as fd 3 (closed by execve); nothing else. */
    if (dup2(p->stdin_fd, 0) < 0 || dup2(p->out_w, 1) < 0 || dup2(p->err_w, 2) < 0)
        child_fail(p, STAGE_FD, iso);
    int report_fd = p->report_w;
    if (report_fd != 3) {
        if (dup3(report_fd, 3, O_CLOEXEC) < 0) child_fail(p, STAGE_FD, iso);
        report_fd = 3;
    }
    ChildPlan q = *p;
    q.report_w = report_fd;
    p = &q;
    if (syscall(SYS_close_range, 4u, ~0u, 0u) != 0) child_fail(p, STAGE_FD, iso);
    if (run_uid != 0) {
        if (chown(p->dir, run_uid, run_uid) != 0) child_fail(p, STAGE_CREDS, iso);
    }
    if (chdir(p->dir) != 0) child_fail(p, STAGE_CHDIR, iso);
    if (run_uid != 0) {
        if (setgroups(0, NULL) != 0 || setresgid(run_uid, run_uid, run_uid) != 0 ||
            setresuid(run_uid, run_uid, run_uid) != 0)
            child_fail(p, STAGE_CREDS, iso);
        iso |= AHA_SANDBOX_DROPPED_ROOT;
    }
    /* After the credential change, which clears it. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        child_fail(p, STAGE_PRCTL, iso);
    struct sock_fprog prog = {.len = seccomp_len, .filter = seccomp_insns};
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) child_fail(p, STAGE_SECCOMP, iso);
    iso |= AHA_SANDBOX_SECCOMP;
    report(p->report_w, STAGE_OK, 0, iso);
    execve(p->argv[0], (char *const *)p->argv, p->envp);
    child_fail(p, STAGE_EXEC, iso);
}

static _Noreturn void keeper_main(const ChildPlan *p) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != p->parent_pid) _exit(127); /* the trainer died before PDEATHSIG was armed */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    unsigned iso = keeper_unshare(p);
    /* Without a network namespace the seccomp filter still denies sockets. */
    uid_t run_uid = p->outer_uid == 0 ? (uid_t)(SANDBOX_UID_BASE + getpid()) : 0;
    pid_t runner = fork();
    if (runner < 0) child_fail(p, STAGE_FORK, iso);
    if (runner == 0) runner_main(p, iso, run_uid);
    setpgid(runner, runner); /* also done by the runner; whichever runs first */
    ChildReport r = {.stage = STAGE_PID, .wait_status = runner};
    ssize_t ignored = write(p->report_w, &r, sizeof r);
    close(p->out_w);
    close(p->err_w);
    close(p->stdin_fd);
    int status = 0;
    while (waitpid(runner, &status, 0) < 0) {
        if (errno != EINTR) _exit(126);
    }
    /* Whatever the runner left in its group dies; orphans come to us (subreaper): reap all. */
    kill(-runner, SIGKILL);
    while (waitpid(-1, NULL, 0) > 0 || errno == EINTR) {}
    r = (ChildReport){.stage = STAGE_EXIT, .wait_status = status};
    ignored = write(p->report_w, &r, sizeof r);
    (void)ignored;
    _exit(0);
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

/* Reads the keeper's and runner's reports that have arrived (non-blocking). */
static void reports_read(int fd, ChildReport *reports, size_t cap, size_t *count, size_t *partial) {
    for (;;) {
        if (*count >= cap) return;
        char *at = (char *)&reports[*count] + *partial;
        ssize_t n = read(fd, at, sizeof(ChildReport) - *partial);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        *partial += (size_t)n;
        if (*partial == sizeof(ChildReport)) {
            (*count)++;
            *partial = 0;
        }
    }
}

static pid_t runner_pid(const ChildReport *reports, size_t count) {
    for (size_t i = 0; i < count; i++)
        if (reports[i].stage == STAGE_PID) return (pid_t)reports[i].wait_status;
    return 0;
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
                      .out_w = out[1], .err_w = err[1], .report_w = rep[1], .limits = limits,
                      .outer_uid = geteuid(), .outer_gid = getegid(), .parent_pid = getpid()};
    double start = reward_now();
    pid_t keeper = fork();
    if (keeper < 0) {
        int e = errno;
        close(stdin_fd);
        for (int i = 0; i < 2; i++) close(out[i]), close(err[i]), close(rep[i]);
        errno = e;
        return aha_error_errno("sandbox: fork");
    }
    if (keeper == 0) keeper_main(&plan);
    setpgid(keeper, keeper); /* also done by the child; whichever runs first */
    close(stdin_fd);
    close(out[1]);
    close(err[1]);
    close(rep[1]);
    int pidfd = (int)syscall(SYS_pidfd_open, keeper, 0);
    ChildReport reports[8];
    size_t n_reports = 0, partial = 0;
    fcntl(rep[0], F_SETFL, O_NONBLOCK);
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
        if (!runner_pid(reports, n_reports)) {
            pf[np] = (struct pollfd){.fd = rep[0], .events = POLLIN};
            idx[np++] = 3;
        }
        int wait_ms = (int)(left * 1000) + 1;
        if (pidfd < 0 && wait_ms > 10) wait_ms = 10; /* no pidfd: poll the child's state */
        int ready = poll(pf, (nfds_t)np, wait_ms);
        if (ready < 0 && errno != EINTR) break;
        for (int i = 0; i < np && ready > 0; i++) {
            if (!pf[i].revents) continue;
            if (idx[i] == 2) exited = 1;
            else if (idx[i] == 3) reports_read(rep[0], reports, 8, &n_reports, &partial);
            else if (capture_read(&cap[idx[i]])) open_streams[idx[i]] = 0;
        }
        if (cap[0].overflow || cap[1].overflow) {
            overflow = 1;
            break;
        }
        if (pidfd < 0) {
            siginfo_t si = {0};
            if (waitid(P_PID, (id_t)keeper, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == keeper)
                exited = 1;
        }
    }
    /* What the runner wrote before it ended is still in the pipes. */
    if (exited) {
        for (int s = 0; s < 2; s++)
            if (open_streams[s]) capture_read(&cap[s]);
        overflow = cap[0].overflow || cap[1].overflow;
    }
    /* Kill the program's group (the keeper then reaps what is left and exits); the keeper
     * itself only if it does not finish promptly. */
    reports_read(rep[0], reports, 8, &n_reports, &partial);
    pid_t runner = runner_pid(reports, n_reports);
    result->group_id = runner;
    if (runner > 0) kill(-runner, SIGKILL);
    int status = 0;
    double give_up = reward_now() + 5.0;
    for (;;) {
        pid_t w = waitpid(keeper, &status, WNOHANG);
        if (w == keeper || (w < 0 && errno != EINTR)) break;
        if (reward_now() > give_up || runner <= 0) {
            kill(-keeper, SIGKILL);
            if (runner > 0) kill(-runner, SIGKILL);
            while (waitpid(keeper, &status, 0) < 0 && errno == EINTR) {}
            break;
        }
        usleep(1000);
    }
    result->wall_s = reward_now() - start;
    if (pidfd >= 0) close(pidfd);
    close(out[0]);
    close(err[0]);
    /* Non-blocking: the keeper is gone, so its reports are all in the pipe, and another
     * fork of this process may hold a copy of the write end. */
    reports_read(rep[0], reports, 8, &n_reports, &partial);
    close(rep[0]);
    int have_setup = 0, have_exit = 0, runner_status = 0;
    ChildReport setup = {0};
    for (size_t i = 0; i < n_reports; i++) {
        const ChildReport *r = &reports[i];
        if (r->stage == STAGE_EXIT) {
            have_exit = 1;
            runner_status = r->wait_status;
        } else if (r->stage >= 0) {
            setup = *r;
            have_setup = 1;
        }
    }
    result->out = capture_take(&cap[0], &result->out_len);
    result->err = capture_take(&cap[1], &result->err_len);
    free(cap[0].buf);
    free(cap[1].buf);
    if (!result->out || !result->err) {
        aha_sandbox_result_free(result);
        return aha_errorf("sandbox: out of memory keeping the output");
    }
    result->isolation = setup.isolation;
    if (have_setup && setup.stage != STAGE_OK) {
        aha_sandbox_result_free(result);
        errno = setup.err;
        return aha_error_errno("sandbox: setting up the child failed at %s", stage_names[setup.stage]);
    }
    if (overflow) {
        result->outcome = AHA_SANDBOX_OUTPUT_LIMIT;
    } else if (timed_out) {
        result->outcome = AHA_SANDBOX_TIMEOUT;
    } else if (!have_exit) {
        /* The keeper died without its report: it was killed from outside. */
        result->outcome = AHA_SANDBOX_SIGNALED;
        result->exit_code = WIFSIGNALED(status) ? WTERMSIG(status) : SIGKILL;
    } else if (WIFSIGNALED(runner_status)) {
        result->outcome = AHA_SANDBOX_SIGNALED;
        result->exit_code = WTERMSIG(runner_status);
    } else {
        result->outcome = AHA_SANDBOX_EXITED;
        result->exit_code = WEXITSTATUS(runner_status);
    }
    return 0;
}
