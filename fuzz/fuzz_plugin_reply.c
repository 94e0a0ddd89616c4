/* One reply line of a JSON-lines reward plug-in (reward/plugin_exec.c): any bytes a
 * plug-in prints give a score, "no score", or an error, never a crash. */
#include "fuzz/fuzz_util.h"
#include "reward/reward_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *reply = fuzz_string(data, size);
    AhaRewardValue value;
    memset(&value, 0, sizeof value);
    if (plugin_exec_parse_reply("rewards[0] (name 'fuzz')", reply, &value) == 0 &&
        memchr(value.reason, '\0', sizeof value.reason) == NULL)
        abort(); /* the reason must stay NUL-terminated */
    free(reply);
    return 0;
}
