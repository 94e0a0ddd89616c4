/* Small file-system helpers shared by the modules that write run directories, models and
 * data sets. */
#ifndef AHA_FS_H
#define AHA_FS_H

#ifdef __cplusplus
extern "C" {
#endif

/* mkdir -p: creates dir and its missing parents (mode 0755); an existing directory is fine,
 * an existing non-directory is an error naming it. */
int aha_mkdir_p(const char *dir);

#ifdef __cplusplus
}
#endif

#endif
