/* Checkpoint directories written atomically, the last K kept, and the trainer state file. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "aha/error.h"
#include "aha/trainer.h"

uint64_t aha_trainer_step_seed(uint64_t run_seed, int step) {
    /* splitmix64 of the pair: consecutive steps get unrelated seeds */
    uint64_t z = run_seed + 0x9E3779B97F4A7C15ull * ((uint64_t)step + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int fsync_path(const char *path) {
    int fd = open(path, O_RDONLY);
    AHA_CHECK_SYS(fd >= 0, "%s: opening to fsync", path);
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    AHA_CHECK_SYS(rc == 0, "%s: fsync", path);
    return 0;
}

static int remove_tree(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return errno == ENOENT ? 0 : aha_error_errno("%s: stat", path);
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        AHA_CHECK_SYS(d, "%s: opening directory", path);
        struct dirent *e;
        int rc = 0;
        while (rc == 0 && (e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            char child[4096];
            snprintf(child, sizeof child, "%s/%s", path, e->d_name);
            rc = remove_tree(child);
        }
        closedir(d);
        AHA_TRY(rc);
        AHA_CHECK_SYS(rmdir(path) == 0, "%s: removing directory", path);
        return 0;
    }
    AHA_CHECK_SYS(unlink(path) == 0, "%s: removing", path);
    return 0;
}

static int make_dir(const char *path) {
    if (mkdir(path, 0755) != 0 && errno != EEXIST) return aha_error_errno("%s: creating directory", path);
    return 0;
}

char *aha_checkpoint_prepare(const char *run_dir, int step) {
    char dir[4096], tmp[4200];
    snprintf(dir, sizeof dir, "%s/checkpoints", run_dir);
    if (make_dir(run_dir) != 0 || make_dir(dir) != 0) return NULL;
    snprintf(tmp, sizeof tmp, "%s/.tmp-step-%08d", dir, step);
    if (remove_tree(tmp) != 0 || make_dir(tmp) != 0) {
        aha_error_prefix("checkpoint of step %d", step);
        return NULL;
    }
    return aha_strdup(tmp);
}

/* Parses "step-NNNNNNNN"; -1 for anything else. */
static int step_of(const char *name) {
    if (strncmp(name, "step-", 5) != 0) return -1;
    char *end;
    long v = strtol(name + 5, &end, 10);
    if (end == name + 5 || *end != '\0' || v < 0 || v > 1000000000L) return -1;
    return (int)v;
}

static int compare_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* The steps of complete checkpoints, ascending; *steps is malloc'd. */
static int list_steps(const char *run_dir, int **steps, int *count) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/checkpoints", run_dir);
    *steps = NULL;
    *count = 0;
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? 0 : aha_error_errno("%s: listing checkpoints", dir);
    int cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int s = step_of(e->d_name);
        if (s < 0) continue;
        if (*count == cap) {
            cap = cap ? 2 * cap : 16;
            int *grown = aha_realloc(*steps, (size_t)cap * sizeof *grown);
            if (!grown) {
                closedir(d);
                free(*steps);
                *steps = NULL;
                return -1;
            }
            *steps = grown;
        }
        (*steps)[(*count)++] = s;
    }
    closedir(d);
    if (*count > 1) qsort(*steps, (size_t)*count, sizeof **steps, compare_int); /* never qsort(NULL) */
    return 0;
}

int aha_checkpoint_finish(const char *run_dir, const char *tmp_dir, int step, int keep) {
    DIR *d = opendir(tmp_dir);
    AHA_CHECK_SYS(d, "%s: opening the checkpoint", tmp_dir);
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char file[4200];
        snprintf(file, sizeof file, "%s/%s", tmp_dir, e->d_name);
        rc = fsync_path(file);
    }
    closedir(d);
    AHA_TRY(rc);
    AHA_TRY(fsync_path(tmp_dir));
    char dir[4096], final[4200];
    snprintf(dir, sizeof dir, "%s/checkpoints", run_dir);
    snprintf(final, sizeof final, "%s/step-%08d", dir, step);
    AHA_TRY(remove_tree(final)); /* a checkpoint of the same step from before a resume */
    AHA_CHECK_SYS(rename(tmp_dir, final) == 0, "%s: renaming to %s", tmp_dir, final);
    AHA_TRY(fsync_path(dir));
    if (keep <= 0) return 0;
    int *steps, count;
    AHA_TRY(list_steps(run_dir, &steps, &count));
    for (int i = 0; rc == 0 && i < count - keep; i++) {
        snprintf(final, sizeof final, "%s/step-%08d", dir, steps[i]);
        rc = remove_tree(final);
    }
    free(steps);
    return rc;
}

int aha_checkpoint_latest(const char *run_dir, int *step, char **path) {
    *step = -1;
    *path = NULL;
    int *steps, count;
    AHA_TRY(list_steps(run_dir, &steps, &count));
    if (count > 0) {
        char p[4200];
        snprintf(p, sizeof p, "%s/checkpoints/step-%08d", run_dir, steps[count - 1]);
        *path = aha_strdup(p);
        *step = steps[count - 1];
    }
    free(steps);
    if (count > 0 && !*path) return -1;
    return 0;
}

int aha_checkpoint_remove_partial(const char *run_dir) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/checkpoints", run_dir);
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? 0 : aha_error_errno("%s: listing checkpoints", dir);
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, ".tmp-step-", 10) != 0) continue;
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        rc = remove_tree(path);
    }
    closedir(d);
    return rc;
}

int aha_checkpoint_steps(const char *run_dir, int **steps, int *count) { return list_steps(run_dir, steps, count); }

/* ---- checksums of a checkpoint's files ---- */

static int file_crc32(const char *path, unsigned long *crc, long long *bytes) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    AHA_CHECK_SYS(fd >= 0, "%s: opening", path);
    static _Thread_local unsigned char buf[1 << 20];
    uLong c = crc32_z(0L, Z_NULL, 0);
    long long total = 0;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int rc = aha_error_errno("%s: reading", path);
            close(fd);
            return rc;
        }
        if (n == 0) break;
        c = crc32_z(c, buf, (size_t)n);
        total += n;
    }
    close(fd);
    *crc = c;
    *bytes = total;
    return 0;
}

/* {"relative/path": {"crc32": "8 hex digits", "bytes": N}} of every file under dir/rel,
 * state.json at the top excluded (it holds the table). */
static int checksum_tree(const char *dir, const char *rel, json_t *files) {
    char path[4400];
    snprintf(path, sizeof path, "%s%s%s", dir, rel[0] ? "/" : "", rel);
    DIR *d = opendir(path);
    AHA_CHECK_SYS(d, "%s: opening directory", path);
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || (!rel[0] && strcmp(e->d_name, "state.json") == 0)) continue;
        char child_rel[4400], child[8900];
        snprintf(child_rel, sizeof child_rel, "%s%s%s", rel, rel[0] ? "/" : "", e->d_name);
        snprintf(child, sizeof child, "%s/%s", dir, child_rel);
        struct stat st;
        if (lstat(child, &st) != 0) {
            rc = aha_error_errno("%s: stat", child);
        } else if (S_ISDIR(st.st_mode)) {
            rc = checksum_tree(dir, child_rel, files);
        } else {
            unsigned long crc;
            long long bytes;
            rc = file_crc32(child, &crc, &bytes);
            char hex[16];
            snprintf(hex, sizeof hex, "%08lx", crc);
            json_t *entry = rc == 0 ? json_pack("{s:s, s:I}", "crc32", hex, "bytes", (json_int_t)bytes) : NULL;
            if (rc == 0 && (!entry || json_object_set_new(files, child_rel, entry) != 0))
                rc = aha_errorf("%s: recording the checksum failed (out of memory)", child);
        }
    }
    closedir(d);
    return rc;
}

int aha_checkpoint_verify(const char *ck_dir) {
    char path[4200];
    snprintf(path, sizeof path, "%s/state.json", ck_dir);
    json_error_t err;
    json_t *root = json_load_file(path, 0, &err);
    if (!root) return aha_errorf("%s:%d:%d: %s", path, err.line, err.column, err.text);
    json_t *files = json_object_get(root, "files");
    int rc = 0;
    if (files && !json_is_object(files)) rc = aha_errorf("%s: 'files' must be an object", path);
    const char *name;
    json_t *entry;
    if (rc == 0 && files) {
        json_object_foreach(files, name, entry) {
            const char *want = json_string_value(json_object_get(entry, "crc32"));
            json_t *size = json_object_get(entry, "bytes");
            if (!want || !json_is_integer(size) || strstr(name, "..") || name[0] == '/') {
                rc = aha_errorf("%s: files.%s: expected {\"crc32\": hex, \"bytes\": integer}", path, name);
                break;
            }
            char file[4400];
            snprintf(file, sizeof file, "%s/%s", ck_dir, name);
            unsigned long crc;
            long long bytes;
            if (access(file, F_OK) != 0) {
                rc = aha_error_errno("%s: listed in state.json but missing", file);
                break;
            }
            if ((rc = file_crc32(file, &crc, &bytes)) != 0) break;
            char got[16];
            snprintf(got, sizeof got, "%08lx", crc);
            if (bytes != json_integer_value(size) || strcmp(got, want) != 0) {
                rc = aha_errorf("%s: damaged: %lld bytes with crc32 %s, but state.json says %lld bytes with crc32 %s",
                                file, bytes, got, (long long)json_integer_value(size), want);
                break;
            }
        }
    }
    json_decref(root);
    return rc;
}

/* ---- state.json ---- */

static int state_write(const char *path, const AhaTrainerState *s, json_t *files);

int aha_trainer_state_save(const char *path, const AhaTrainerState *s) { return state_write(path, s, NULL); }

int aha_checkpoint_seal(const char *tmp_dir, const AhaTrainerState *s) {
    json_t *files = json_object();
    AHA_CHECK_ALLOC(files);
    int rc = checksum_tree(tmp_dir, "", files);
    char path[4200];
    snprintf(path, sizeof path, "%s/state.json", tmp_dir);
    if (rc == 0) rc = state_write(path, s, files);
    json_decref(files);
    return rc;
}

/* files (borrowed, may be NULL): the checksum table of aha_checkpoint_seal. */
static int state_write(const char *path, const AhaTrainerState *s, json_t *files) {
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)s->seed);
    json_t *j = json_pack("{s:i, s:s, s:I, s:I, s:i, s:i, s:I, s:s, s:i}", "step", s->step, "seed", seed,
                          "data_epoch", (json_int_t)s->data_epoch, "data_position", (json_int_t)s->data_position,
                          "nan_streak", s->nan_streak, "ref_step", s->ref_step, "optimizer_steps",
                          (json_int_t)s->optimizer_steps, "recipe_sha", s->recipe_sha, "format", 1);
    AHA_REQUIRE(j, "%s: building the trainer state failed", path);
    if (files && json_object_set(j, "files", files) != 0) {
        json_decref(j);
        return aha_errorf("%s: building the trainer state failed (out of memory)", path);
    }
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int rc = json_dump_file(j, tmp, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(j);
    if (rc != 0) return aha_error_errno("%s: writing", tmp);
    if (fsync_path(tmp) != 0 || rename(tmp, path) != 0) {
        int saved = errno;
        unlink(tmp);
        errno = saved;
        return aha_error_errno("%s: saving the trainer state", path);
    }
    return 0;
}

static int get_int(const char *path, json_t *root, const char *key, long long min, long long *out) {
    json_t *v = json_object_get(root, key);
    AHA_REQUIRE(v, "%s: missing key '%s'", path, key);
    AHA_REQUIRE(json_is_integer(v), "%s: '%s' must be an integer", path, key);
    *out = json_integer_value(v);
    AHA_REQUIRE(*out >= min && *out <= 2000000000000000000LL, "%s: '%s' = %lld is out of range (>= %lld)", path, key,
                *out, min);
    return 0;
}

int aha_trainer_state_load(const char *path, AhaTrainerState *s) {
    json_error_t err;
    json_t *root = json_load_file(path, 0, &err);
    if (!root) return aha_errorf("%s:%d:%d: %s", path, err.line, err.column, err.text);
    AhaTrainerState st = {0};
    long long v = 0;
    int rc = -1;
    if (!json_is_object(root)) {
        aha_errorf("%s: expected a JSON object", path);
        goto done;
    }
    if (get_int(path, root, "format", 1, &v) != 0) goto done;
    if (v != 1) {
        aha_errorf("%s: format %lld is not supported (expected 1)", path, v);
        goto done;
    }
    if (get_int(path, root, "step", 0, &v) != 0) goto done;
    st.step = (int)v;
    if (get_int(path, root, "data_epoch", 0, &v) != 0) goto done;
    st.data_epoch = v;
    if (get_int(path, root, "data_position", 0, &v) != 0) goto done;
    st.data_position = v;
    if (get_int(path, root, "nan_streak", 0, &v) != 0) goto done;
    st.nan_streak = (int)v;
    if (get_int(path, root, "ref_step", 0, &v) != 0) goto done;
    st.ref_step = (int)v;
    if (get_int(path, root, "optimizer_steps", 0, &v) != 0) goto done;
    st.optimizer_steps = v;
    json_t *seed = json_object_get(root, "seed");
    const char *text = json_string_value(seed);
    char *end = NULL;
    if (!text) {
        aha_errorf("%s: 'seed' must be a string of digits", path);
        goto done;
    }
    errno = 0;
    st.seed = strtoull(text, &end, 10);
    if (end == text || *end || errno) {
        aha_errorf("%s: 'seed' must be a string of digits, got '%s'", path, text);
        goto done;
    }
    const char *sha = json_string_value(json_object_get(root, "recipe_sha"));
    if (!sha || strlen(sha) >= sizeof st.recipe_sha) {
        aha_errorf("%s: 'recipe_sha' must be a string of at most 64 characters", path);
        goto done;
    }
    snprintf(st.recipe_sha, sizeof st.recipe_sha, "%s", sha);
    *s = st;
    rc = 0;
done:
    json_decref(root);
    return rc;
}
