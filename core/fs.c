#include "aha/fs.h"

#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>

#include "aha/error.h"

int aha_mkdir_p(const char *dir) {
    char path[4096];
    int n = snprintf(path, sizeof path, "%s", dir);
    AHA_REQUIRE(n > 0 && n < (int)sizeof path, "directory name '%s' is empty or too long", dir);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        AHA_CHECK_SYS(mkdir(path, 0755) == 0 || errno == EEXIST, "creating directory %s", path);
        *p = '/';
    }
    AHA_CHECK_SYS(mkdir(path, 0755) == 0 || errno == EEXIST, "creating directory %s", path);
    struct stat st;
    AHA_CHECK_SYS(stat(path, &st) == 0, "%s", path);
    AHA_REQUIRE(S_ISDIR(st.st_mode), "%s exists and is not a directory", path);
    return 0;
}
