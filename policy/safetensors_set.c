/* A model directory's safetensors: one model.safetensors, or the shards named by
 * model.safetensors.index.json, looked up by name across all files. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aha/error.h"
#include "aha/safetensors.h"

struct AhaSafetensorsSet {
    AhaSafetensorsFile **files;   /* [n_files] */
    char **file_names;            /* [n_files], as the index spells them */
    size_t n_files;
    const AhaSafetensor **sorted; /* [count], by name */
    size_t count;
};

static int compare_by_name(const void *a, const void *b) {
    const AhaSafetensor *x = *(const AhaSafetensor *const *)a;
    const AhaSafetensor *y = *(const AhaSafetensor *const *)b;
    return strcmp(x->name, y->name);
}

static int join(char *out, size_t cap, const char *dir, const char *name) {
    int n = snprintf(out, cap, "%s/%s", dir, name);
    AHA_REQUIRE(n > 0 && (size_t)n < cap, "path %s/%s is too long", dir, name);
    return 0;
}

/* Returns the index of the open file called name, opening it if needed; -1 on error. */
static long file_index(AhaSafetensorsSet *set, const char *dir, const char *name) {
    for (size_t f = 0; f < set->n_files; f++)
        if (strcmp(set->file_names[f], name) == 0) return (long)f;
    char path[4096];
    AHA_TRY(join(path, sizeof path, dir, name));
    AhaSafetensorsFile **files = aha_realloc(set->files, (set->n_files + 1) * sizeof *files);
    AHA_CHECK_ALLOC(files);
    set->files = files;
    char **names = aha_realloc(set->file_names, (set->n_files + 1) * sizeof *names);
    AHA_CHECK_ALLOC(names);
    set->file_names = names;
    set->file_names[set->n_files] = aha_strdup(name);
    AHA_CHECK_ALLOC(set->file_names[set->n_files]);
    set->files[set->n_files] = aha_safetensors_open(path);
    if (!set->files[set->n_files]) {
        free(set->file_names[set->n_files]);
        return -1;
    }
    return (long)set->n_files++;
}

/* Sorts every tensor of every file by name and rejects a name found in two files. */
static int build_index(AhaSafetensorsSet *set) {
    size_t total = 0;
    for (size_t f = 0; f < set->n_files; f++) total += aha_safetensors_count(set->files[f]);
    set->sorted = aha_calloc(total, sizeof *set->sorted);
    AHA_CHECK_ALLOC(set->sorted);
    for (size_t f = 0; f < set->n_files; f++)
        for (size_t i = 0; i < aha_safetensors_count(set->files[f]); i++)
            set->sorted[set->count++] = aha_safetensors_tensor(set->files[f], i);
    qsort(set->sorted, set->count, sizeof *set->sorted, compare_by_name);
    for (size_t i = 1; i < set->count; i++) {
        AHA_REQUIRE(strcmp(set->sorted[i - 1]->name, set->sorted[i]->name) != 0,
                    "tensor '%s' is in both %s and %s", set->sorted[i]->name,
                    set->sorted[i - 1]->path, set->sorted[i]->path);
    }
    return 0;
}

/* Opens every shard the index names and checks that the index and the files agree:
 * every listed tensor is in its file, and every file's tensor is listed there. */
static int open_sharded(AhaSafetensorsSet *set, const char *dir, const char *index_path) {
    json_error_t jerr;
    json_t *index = json_load_file(index_path, JSON_REJECT_DUPLICATES, &jerr);
    AHA_REQUIRE(index, "%s:%d:%d: %s", index_path, jerr.line, jerr.column, jerr.text);
    json_t *map = json_object_get(index, "weight_map");
    int rc = -1;
    if (!json_is_object(map) || json_object_size(map) == 0) {
        aha_errorf("%s: expected a non-empty object \"weight_map\" of tensor name -> file",
                   index_path);
        goto done;
    }
    const char *name;
    json_t *file;
    json_object_foreach(map, name, file) {
        const char *shard = json_string_value(file);
        if (!shard || !shard[0] || strchr(shard, '/') || shard[0] == '.') {
            aha_errorf("%s: weight_map[\"%s\"] is not a file name in the directory", index_path,
                       name);
            goto done;
        }
        long f = file_index(set, dir, shard);
        if (f < 0) goto done;
        if (!aha_safetensors_find(set->files[f], name)) {
            aha_errorf("%s: tensor '%s' is listed in %s but that file does not hold it",
                       index_path, name, shard);
            goto done;
        }
    }
    for (size_t f = 0; f < set->n_files; f++) {
        for (size_t i = 0; i < aha_safetensors_count(set->files[f]); i++) {
            const AhaSafetensor *t = aha_safetensors_tensor(set->files[f], i);
            const char *listed = json_string_value(json_object_get(map, t->name));
            if (!listed || strcmp(listed, set->file_names[f]) != 0) {
                aha_errorf("%s: tensor '%s' of %s is not listed for that file in the index",
                           index_path, t->name, set->file_names[f]);
                goto done;
            }
        }
    }
    rc = 0;
done:
    json_decref(index);
    return rc;
}

AhaSafetensorsSet *aha_safetensors_open_dir(const char *dir) {
    AhaSafetensorsSet *set = aha_calloc(1, sizeof *set);
    if (!set) return NULL;
    char index_path[4096], single_path[4096];
    int rc = -1;
    if (join(index_path, sizeof index_path, dir, "model.safetensors.index.json") != 0 ||
        join(single_path, sizeof single_path, dir, "model.safetensors") != 0) {
        goto done;
    }
    if (access(index_path, F_OK) == 0) {
        rc = open_sharded(set, dir, index_path);
    } else if (access(single_path, F_OK) == 0) {
        rc = file_index(set, dir, "model.safetensors") < 0 ? -1 : 0;
    } else {
        aha_errorf("%s: no model.safetensors or model.safetensors.index.json", dir);
    }
    if (rc == 0) rc = build_index(set);
done:
    if (rc != 0) {
        aha_safetensors_set_close(set);
        return NULL;
    }
    return set;
}

void aha_safetensors_set_close(AhaSafetensorsSet *set) {
    if (!set) return;
    for (size_t f = 0; f < set->n_files; f++) {
        aha_safetensors_close(set->files[f]);
        free(set->file_names[f]);
    }
    free(set->files);
    free(set->file_names);
    free(set->sorted);
    free(set);
}

size_t aha_safetensors_set_count(const AhaSafetensorsSet *set) { return set->count; }

size_t aha_safetensors_set_files(const AhaSafetensorsSet *set) { return set->n_files; }

const AhaSafetensor *aha_safetensors_set_tensor(const AhaSafetensorsSet *set, size_t index) {
    return index < set->count ? set->sorted[index] : NULL;
}

const AhaSafetensor *aha_safetensors_set_find(const AhaSafetensorsSet *set, const char *name) {
    AhaSafetensor key = {.name = name};
    const AhaSafetensor *key_ptr = &key;
    const AhaSafetensor **hit =
        bsearch(&key_ptr, set->sorted, set->count, sizeof *set->sorted, compare_by_name);
    return hit ? *hit : NULL;
}
