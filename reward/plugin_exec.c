/* Plug-in rewards as programs: one JSON request per line on the program's stdin, one JSON
 * reply per line on its stdout ({"score": number|null, "reason": "..."} or {"error": "..."}).
 * One process per worker, started on first use and kept across calls; a process that dies,
 * answers garbage or runs past the time limit is killed (its whole process group) and started
 * afresh for the next call. stdin/stdout are one socketpair so writing to a dead program is
 * an EPIPE error (MSG_NOSIGNAL), never a SIGPIPE in the trainer. Programs start with
 * posix_spawn (it copies nothing of the trainer); when the trainer dies they see EOF on
 * stdin. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "reward/reward_internal.h"

#define REPLY_MAX (1u << 20)

typedef struct {
    pthread_mutex_t lock;
    pid_t pid;   /* 0 = not running */
    int sock;    /* our end of the socketpair */
    char *buf;   /* [REPLY_MAX + 1] bytes read but not yet consumed */
    size_t len;
} ExecSlot;

struct ExecReward {
    char *command;        /* a program, or NULL for a host function */
    PluginHostFn host;    /* runs in a forked child serving the socket (C plug-ins) */
    void *host_arg;
    char *label; /* "plugin 'name' (command)" */
    double timeout_s;
    ExecSlot *slots; /* [jobs] */
    int jobs;
};

static void slot_stop(ExecSlot *s, int gently) {
    if (s->pid <= 0) return;
    close(s->sock);
    s->sock = -1;
    if (gently) { /* EOF on stdin asks it to finish; give it a moment */
        for (int i = 0; i < 100; i++) {
            if (waitpid(s->pid, NULL, WNOHANG) == s->pid) {
                kill(-s->pid, SIGKILL);
                s->pid = 0;
                s->len = 0;
                return;
            }
            usleep(10000);
        }
    }
    kill(-s->pid, SIGKILL);
    while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR) {}
    s->pid = 0;
    s->len = 0;
}

extern char **environ;

/* /bin/sh -c COMMAND with the socket as stdin and stdout, in its own process group, default
 * signal dispositions and mask, no other descriptor of ours. Returns 0 or an errno. */
static int spawn_program(ExecReward *er, int sock, pid_t *pid) {
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    int rc = posix_spawn_file_actions_init(&fa);
    if (rc) return rc;
    rc = posix_spawnattr_init(&attr);
    if (rc) {
        posix_spawn_file_actions_destroy(&fa);
        return rc;
    }
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    if (!rc) rc = posix_spawn_file_actions_adddup2(&fa, sock, 0);
    if (!rc) rc = posix_spawn_file_actions_adddup2(&fa, sock, 1);
    if (!rc) rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    if (!rc) rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF |
                                                      POSIX_SPAWN_SETSIGMASK);
    if (!rc) rc = posix_spawnattr_setpgroup(&attr, 0);
    if (!rc) rc = posix_spawnattr_setsigdefault(&attr, &all);
    if (!rc) rc = posix_spawnattr_setsigmask(&attr, &none);
    char *const argv[] = {"sh", "-c", er->command, NULL};
    if (!rc) rc = posix_spawn(pid, "/bin/sh", &fa, &attr, argv, environ);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    return rc;
}

/* One start at a time: a host child does not exec, so it keeps every descriptor open at its
 * fork; serializing keeps other slots' child ends out of it (their EOF must mean death). */
static pthread_mutex_t start_lock = PTHREAD_MUTEX_INITIALIZER;

static int slot_start(ExecReward *er, ExecSlot *s) {
    int sv[2];
    pthread_mutex_lock(&start_lock);
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        pthread_mutex_unlock(&start_lock);
        return aha_error_errno("%s: socketpair", er->label);
    }
    pid_t pid;
    if (!er->host) { /* a program: posix_spawn, which copies nothing of the trainer */
        int rc = spawn_program(er, sv[1], &pid);
        close(sv[1]);
        pthread_mutex_unlock(&start_lock);
        if (rc != 0) {
            close(sv[0]);
            errno = rc;
            return aha_error_errno("%s: starting /bin/sh", er->label);
        }
        setpgid(pid, pid);
        s->pid = pid;
        s->sock = sv[0];
        s->len = 0;
        fcntl(s->sock, F_SETFL, O_NONBLOCK);
        return 0;
    }
    pid_t parent = getpid();
    pid = fork();
    if (pid < 0) {
        int e = errno;
        close(sv[0]);
        close(sv[1]);
        pthread_mutex_unlock(&start_lock);
        errno = e;
        return aha_error_errno("%s: fork", er->label);
    }
    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        signal(SIGPIPE, SIG_DFL);
        /* A crash must end this child: no handler of the trainer's may catch it here. */
        static const int fatal[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTERM, SIGINT};
        for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++) signal(fatal[i], SIG_DFL);
        close(sv[0]);
        for (int i = 0; i < er->jobs; i++) /* the other slots' ends: not ours to hold */
            if (er->slots[i].sock >= 0) close(er->slots[i].sock);
        _exit(er->host(er->host_arg, sv[1]) == 0 ? 0 : 1);
    }
    setpgid(pid, pid);
    close(sv[1]);
    pthread_mutex_unlock(&start_lock);
    s->pid = pid;
    s->sock = sv[0];
    s->len = 0;
    fcntl(s->sock, F_SETFL, O_NONBLOCK);
    return 0;
}

/* Describes why the program went away: "exited with status 3" / "killed by signal 9". */
static void exit_text(ExecSlot *s, char *buf, size_t cap) {
    int status;
    pid_t r = 0;
    for (int i = 0; i < 50 && r == 0; i++) { /* EOF comes just before the exit */
        r = waitpid(s->pid, &status, WNOHANG);
        if (r == 0) usleep(2000);
    }
    if (r == s->pid && WIFEXITED(status)) snprintf(buf, cap, "exited with status %d", WEXITSTATUS(status));
    else if (r == s->pid && WIFSIGNALED(status)) snprintf(buf, cap, "was killed by signal %d", WTERMSIG(status));
    else snprintf(buf, cap, "closed its stdout");
    if (r == s->pid) {
        kill(-s->pid, SIGKILL);
        s->pid = 0;
        close(s->sock);
        s->sock = -1;
    }
}

static int wait_fd(int fd, short events, double deadline) {
    for (;;) {
        double left = deadline - reward_now();
        if (left <= 0) return 0;
        struct pollfd pf = {.fd = fd, .events = events};
        int r = poll(&pf, 1, (int)(left * 1000) + 1);
        if (r > 0) return 1;
        if (r < 0 && errno != EINTR) return -1;
    }
}

/* Sends one line and reads one line back; -1 with a message (the slot is then stopped). */
static int slot_exchange(ExecReward *er, ExecSlot *s, const char *line, size_t n, char **reply) {
    double deadline = reward_now() + er->timeout_s;
    char why[96];
    size_t sent = 0;
    while (sent < n) {
        ssize_t w = send(s->sock, line + sent, n - sent, MSG_NOSIGNAL);
        if (w > 0) {
            sent += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (wait_fd(s->sock, POLLOUT, deadline) > 0) continue;
            slot_stop(s, 0);
            return aha_errorf("%s: did not read its request within %.3g s (timeout_s)", er->label,
                              er->timeout_s);
        }
        exit_text(s, why, sizeof why);
        slot_stop(s, 0);
        return aha_errorf("%s: %s before reading its request", er->label, why);
    }
    for (;;) {
        char *nl = s->len ? memchr(s->buf, '\n', s->len) : NULL;
        if (nl) {
            size_t line_len = (size_t)(nl - s->buf);
            *reply = aha_malloc(line_len + 1);
            if (!*reply) return -1;
            memcpy(*reply, s->buf, line_len);
            (*reply)[line_len] = '\0';
            memmove(s->buf, nl + 1, s->len - line_len - 1);
            s->len -= line_len + 1;
            return 0;
        }
        if (s->len >= REPLY_MAX) {
            slot_stop(s, 0);
            return aha_errorf("%s: reply longer than %u bytes without a newline", er->label, REPLY_MAX);
        }
        int ready = wait_fd(s->sock, POLLIN, deadline);
        if (ready <= 0) {
            slot_stop(s, 0);
            return aha_errorf("%s: no reply within %.3g s (timeout_s); the program was killed and "
                              "restarts on the next call", er->label, er->timeout_s);
        }
        ssize_t r = recv(s->sock, s->buf + s->len, REPLY_MAX - s->len, 0);
        if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (r <= 0) {
            exit_text(s, why, sizeof why);
            slot_stop(s, 0);
            return aha_errorf("%s: %s without replying (it restarts on the next call)", er->label, why);
        }
        s->len += (size_t)r;
    }
}

static ExecReward *exec_create(const char *label, const char *command, PluginHostFn host,
                               void *host_arg, double timeout_s, int jobs) {
    if (!(timeout_s > 0 && timeout_s <= 3600)) {
        aha_errorf("timeout_s: expected seconds in (0, 3600], got %g", timeout_s);
        return NULL;
    }
    ExecReward *er = aha_calloc(1, sizeof *er);
    if (!er) return NULL;
    er->command = command ? aha_strdup(command) : NULL;
    er->host = host;
    er->host_arg = host_arg;
    er->label = aha_strdup(label);
    er->slots = aha_calloc((size_t)jobs, sizeof *er->slots);
    if ((command && !er->command) || !er->label || !er->slots) {
        plugin_exec_free(er);
        return NULL;
    }
    er->timeout_s = timeout_s;
    er->jobs = jobs;
    for (int i = 0; i < jobs; i++) {
        pthread_mutex_init(&er->slots[i].lock, NULL);
        er->slots[i].sock = -1;
    }
    for (int i = 0; i < jobs; i++) {
        er->slots[i].buf = aha_malloc(REPLY_MAX + 1);
        if (!er->slots[i].buf) {
            plugin_exec_free(er);
            return NULL;
        }
    }
    return er;
}

ExecReward *plugin_exec_create(const AhaRewardConfig *config, const char *name, int jobs) {
    size_t n = strlen(name) + strlen(config->command) + 32;
    char *label = aha_malloc(n);
    if (!label) return NULL;
    snprintf(label, n, "plugin '%s' (%s)", name, config->command);
    ExecReward *er = exec_create(label, config->command, NULL, NULL, config->timeout_s, jobs);
    free(label);
    return er;
}

ExecReward *plugin_exec_create_host(const char *label, PluginHostFn host, void *arg,
                                    double timeout_s, int jobs) {
    return exec_create(label, NULL, host, arg, timeout_s, jobs);
}

int plugin_exec_parse_reply(const char *label, const char *reply, AhaRewardValue *value) {
    json_error_t jerr;
    json_t *obj = json_loads(reply, JSON_ALLOW_NUL, &jerr);
    if (!json_is_object(obj)) {
        json_decref(obj);
        return aha_errorf("%s: bad JSON reply '%.60s': %s", label, reply,
                          obj ? "expected an object" : jerr.text);
    }
    const char *reason = json_string_value(json_object_get(obj, "reason"));
    json_t *error = json_object_get(obj, "error");
    json_t *score = json_object_get(obj, "score");
    int rc = 0;
    if (error) {
        const char *text = json_string_value(error);
        rc = aha_errorf("%s: %s", label, text ? text : "reported an error");
    } else if (json_is_number(score) && isfinite(json_number_value(score))) {
        reward_value_set(value, AHA_REWARD_SCORED, json_number_value(score), "%s", reason ? reason : "");
    } else if (json_is_null(score)) {
        reward_value_set(value, AHA_REWARD_NO_SCORE, 0, "%s", reason ? reason : "no score");
    } else {
        rc = aha_errorf("%s: bad reply '%.60s': expected {\"score\": number or null, \"reason\": "
                        "string}", label, reply);
    }
    json_decref(obj);
    return rc;
}

int plugin_exec_score(ExecReward *er, const RewardCall *call, AhaRewardValue *value) {
    ExecSlot *s = &er->slots[call->worker % er->jobs];
    char *request = reward_request_json(call);
    AHA_CHECK_ALLOC(request);
    size_t n = strlen(request);
    request[n] = '\n'; /* reward_request_json leaves room for it */
    pthread_mutex_lock(&s->lock);
    char *reply = NULL;
    int rc = s->pid > 0 ? 0 : slot_start(er, s);
    if (rc == 0) rc = slot_exchange(er, s, request, n + 1, &reply);
    if (rc == 0) {
        rc = plugin_exec_parse_reply(er->label, reply, value);
        if (rc != 0 && strstr(aha_error_message(), "bad ")) slot_stop(s, 0); /* out of step */
    }
    pthread_mutex_unlock(&s->lock);
    free(reply);
    free(request);
    return rc;
}

void plugin_exec_free(ExecReward *er) {
    if (!er) return;
    for (int i = 0; er->slots && i < er->jobs; i++) {
        slot_stop(&er->slots[i], 1);
        free(er->slots[i].buf);
        pthread_mutex_destroy(&er->slots[i].lock);
    }
    free(er->slots);
    free(er->command);
    free(er->label);
    free(er);
}
