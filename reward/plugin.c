/* Plug-in rewards as shared objects (include/aha/reward_plugin.h), loaded with dlopen. */
#include <dlfcn.h>
#include <errno.h>
#include <unistd.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aha/reward_plugin.h"
#include "reward/reward_internal.h"

struct PluginReward {
    void *handle;
    char *label; /* "plugin 'name' (path)" for messages */
    AhaRewardPluginScoreFn score;
    ExecReward *host; /* forked children that call score (reward/plugin_exec.c) */
};

static int write_all(int fd, const char *data, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, data, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        data += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The child's loop: one JSON request per line in, one reply per line out. A crash or a hang
 * in the plug-in ends this child, not the trainer. */
static int plugin_host(void *arg, int fd) {
    PluginReward *pr = arg;
    FILE *in = fdopen(fd, "r");
    if (!in) return -1;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, in) > 0) {
        json_t *req = json_loads(line, JSON_ALLOW_NUL, NULL);
        json_t *tokens = json_object_get(req, "completion_tokens");
        char *row = json_dumps(json_object_get(req, "row"), JSON_COMPACT);
        AhaPluginSample s = {.prompt = json_string_value(json_object_get(req, "prompt")),
                             .completion = json_string_value(json_object_get(req, "completion")),
                             .row_json = row,
                             .completion_tokens = json_is_integer(tokens) ? (int)json_integer_value(tokens) : -1,
                             .prompt_len = json_string_length(json_object_get(req, "prompt")),
                             .completion_len = json_string_length(json_object_get(req, "completion"))};
        char reason[AHA_REWARD_REASON_MAX] = "";
        double score = 0.0;
        json_t *reply;
        if (!s.completion || !row) {
            reply = json_pack("{s:s}", "error", "the plug-in host received a malformed request");
        } else {
            if (!s.prompt) s.prompt = "";
            int rc = pr->score(&s, &score, reason, sizeof reason);
            reason[sizeof reason - 1] = '\0';
            json_t *why = json_string(reason);
            if (!why) why = json_string("(reason is not valid UTF-8)");
            if (rc == 0 && isfinite(score)) reply = json_pack("{s:f,s:o}", "score", score, "reason", why);
            else if (rc == 0) reply = json_pack("{s:s,s:o}", "error", "returned a score that is not finite", "reason", why);
            else if (rc == 1) reply = json_pack("{s:n,s:o}", "score", "reason", why);
            else {
                json_decref(why);
                reply = json_pack("{s:s}", "error", reason[0] ? reason : "failed without a reason");
            }
        }
        free(row);
        json_decref(req);
        char *text = reply ? json_dumps(reply, JSON_COMPACT) : NULL;
        json_decref(reply);
        if (!text || write_all(fd, text, strlen(text)) != 0 || write_all(fd, "\n", 1) != 0) {
            free(text);
            break;
        }
        free(text);
    }
    free(line);
    fclose(in);
    return 0;
}

PluginReward *plugin_so_create(const AhaRewardConfig *config, const char *name, int jobs) {
    PluginReward *pr = aha_calloc(1, sizeof *pr);
    if (!pr) return NULL;
    size_t n = strlen(name) + strlen(config->path) + 32;
    pr->label = aha_malloc(n);
    if (!pr->label) {
        free(pr);
        return NULL;
    }
    snprintf(pr->label, n, "plugin '%s' (%s)", name, config->path);
    /* dlopen searches the library path for a bare name; a plug-in is a file the user names. */
    if (!strchr(config->path, '/')) {
        aha_errorf("%s: path: expected a path to a .so file (write ./%s for one in the current "
                   "directory)", pr->label, config->path);
        plugin_so_free(pr);
        return NULL;
    }
    dlerror();
    pr->handle = dlopen(config->path, RTLD_NOW | RTLD_LOCAL);
    if (!pr->handle) {
        const char *why = dlerror();
        aha_errorf("%s: cannot load: %s", pr->label, why ? why : "dlopen failed");
        plugin_so_free(pr);
        return NULL;
    }
    AhaRewardPluginAbiVersionFn version;
    *(void **)&version = dlsym(pr->handle, "aha_reward_plugin_abi_version");
    *(void **)&pr->score = dlsym(pr->handle, "aha_reward_plugin_score");
    const char *missing = !version ? "aha_reward_plugin_abi_version"
                          : !pr->score ? "aha_reward_plugin_score" : NULL;
    if (missing) {
        aha_errorf("%s: does not export %s() (see include/aha/reward_plugin.h)", pr->label, missing);
        plugin_so_free(pr);
        return NULL;
    }
    int v = version();
    if (v != AHA_REWARD_PLUGIN_ABI_VERSION) {
        aha_errorf("%s: built for plug-in ABI version %d, this aha speaks version %d; rebuild it "
                   "against this include/aha/reward_plugin.h", pr->label, v,
                   AHA_REWARD_PLUGIN_ABI_VERSION);
        plugin_so_free(pr);
        return NULL;
    }
    pr->host = plugin_exec_create_host(pr->label, plugin_host, pr, config->timeout_s, jobs);
    if (!pr->host) {
        plugin_so_free(pr);
        return NULL;
    }
    return pr;
}

int plugin_so_score(PluginReward *pr, const RewardCall *call, AhaRewardValue *value) {
    return plugin_exec_score(pr->host, call, value);
}

void plugin_so_free(PluginReward *pr) {
    if (!pr) return;
    plugin_exec_free(pr->host);
    if (pr->handle) dlclose(pr->handle);
    free(pr->label);
    free(pr);
}
