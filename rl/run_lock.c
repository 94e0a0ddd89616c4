/* The writer's lock on a run directory: an exclusive flock(2) on RUN_DIR/aha.lock, which
 * holds the owner's PID as text. The kernel drops the lock when the process dies, so a
 * killed run never leaves it stale; readers (aha inspect, aha report, sqlite3) never take
 * it. docs/training.md. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "aha/error.h"
#include "aha/trainer.h"

/* What a lock file says about its holder: "pid N" or "another process". */
static void holder_of(int fd, char *out, size_t cap) {
    char buf[32] = "";
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    long pid = n > 0 ? strtol(buf, NULL, 10) : 0;
    if (pid > 0) snprintf(out, cap, "process %ld", pid);
    else snprintf(out, cap, "another process");
}

int aha_run_lock(const char *run_dir) {
    char path[4200];
    snprintf(path, sizeof path, "%s/aha.lock", run_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        if (errno == EROFS || errno == EACCES || errno == EPERM)
            return aha_error_errno("%s: the run directory is read-only (a run is written by one aha train "
                                   "that needs to create %s)", run_dir, path);
        return aha_error_errno("%s: creating the lock file", path);
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int saved = errno;
        char who[64];
        holder_of(fd, who, sizeof who);
        close(fd);
        if (saved == EWOULDBLOCK)
            return aha_errorf("%s: %s is training this run (it holds %s); one aha train writes a run at a time "
                              "(aha inspect and aha report may read it meanwhile)", run_dir, who, path);
        errno = saved;
        return aha_error_errno("%s: locking", path);
    }
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
        int rc = aha_error_errno("%s: writing the holder's PID", path);
        close(fd);
        return rc;
    }
    return fd;
}

void aha_run_unlock(int fd) {
    if (fd >= 0) close(fd); /* closing the last descriptor releases the flock */
}
