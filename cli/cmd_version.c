#include <cblas.h>
#include <jansson.h>
#include <seccomp.h>
#include <sqlite3.h>
#include <stdio.h>
#include <utf8proc.h>
#include <yaml.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "cli.h"

static const char usage[] =
    "usage: aha version\n\n"
    "Prints aha's version, build type, backends and the versions of the libraries it uses.\n";

int cmd_version(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return 0;
    }
    char pcre2_version[64] = "?";
    pcre2_config(PCRE2_CONFIG_VERSION, pcre2_version);
    const struct scmp_version *seccomp = seccomp_version();
    printf("aha %s (%s build)\n", AHA_VERSION, AHA_BUILD_TYPE);
#ifdef AHA_HAVE_CUDA
    printf("backends: cpu cuda\n");
#else
    printf("backends: cpu\n");
#endif
    printf("libyaml %s\n", yaml_get_version_string());
    printf("pcre2 %s\n", pcre2_version);
    printf("sqlite %s\n", sqlite3_libversion());
    printf("jansson %s\n", jansson_version_str());
    printf("utf8proc %s\n", utf8proc_version());
    printf("libseccomp %u.%u.%u\n", seccomp->major, seccomp->minor, seccomp->micro);
    printf("openblas %s\n", openblas_get_config());
    return 0;
}
