#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "aha/dist.h"
#include "aha/error.h"
#include "aha/trainloop.h"
#include "cli.h"

/* The signal that asked for a stop (SIGINT or SIGTERM), 0 while none. */
static volatile sig_atomic_t stop_requested;

/* The first Ctrl-C or SIGTERM (what Slurm and Kubernetes send before SIGKILL) asks for a
 * clean stop; SA_RESETHAND makes a second one end the process at once (the run resumes
 * from its last checkpoint either way). */
static void on_stop_signal(int sig) {
    static const char int_msg[] = "\naha train: stopping after the current step (Ctrl-C again to quit now)\n";
    static const char term_msg[] = "\naha train: SIGTERM: stopping after the current step\n";
    stop_requested = sig;
    ssize_t ignored = sig == SIGTERM ? write(STDERR_FILENO, term_msg, sizeof term_msg - 1)
                                     : write(STDERR_FILENO, int_msg, sizeof int_msg - 1);
    (void)ignored;
}

/* SIGINT and SIGTERM ask the loop to stop after the current step, checkpointing first; the
 * exit status is then 128 + the signal (130, 143), as a shell reports a killed process. */
static int run_training(const AhaRecipe *recipe, const char *resume, const char *const *sets, int n_sets,
                        int new_store, int fall_back) {
    struct sigaction sa = {0}, old_int, old_term;
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND | SA_RESTART; /* no EINTR in the reward workers, SQLite */
    stop_requested = 0;
    if (sigaction(SIGINT, &sa, &old_int) != 0 || sigaction(SIGTERM, &sa, &old_term) != 0) {
        perror("aha train: sigaction");
        return 1;
    }
    /* launched by mpirun/srun: one of the job's processes (docs/distributed.md) */
    if (aha_dist_init() != 0) {
        fprintf(stderr, "aha train: error: %s\n", aha_error_message());
        aha_dist_abort(1);
    }
    AhaTrainOptions options = {.out = stdout, .stop = &stop_requested, .resume_sets = sets, .n_resume_sets = n_sets,
                               .new_store = new_store, .fall_back = fall_back};
    int rc = resume ? aha_train_resume(resume, &options) : aha_train(recipe, &options);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (rc != 0 && aha_dist_size() > 1) {
        /* the other ranks wait in a collective for this one: end the whole job */
        fprintf(stderr, "aha train: error (rank %d of %d): %s\n", aha_dist_rank(), aha_dist_size(),
                aha_error_message());
        fflush(stderr);
        aha_dist_abort(1);
    }
    if (aha_dist_finalize() != 0 && rc == 0) rc = -1;
    if (rc != 0) return cli_fail("train");
    return aha_train_was_interrupted() ? 128 + (int)stop_requested : 0;
}

static const char usage[] =
    "usage: aha train RECIPE.yaml [--set KEY=VALUE]... [--dry-run]\n"
    "       aha train --resume RUN_DIR [--set run.steps=N]... [--fall-back] [--new-store]\n\n"
    "Runs GRPO as the recipe says in run.output_dir (RUN_DIR): every step and rollout in\n"
    "RUN_DIR/run.db, checkpoints in RUN_DIR/checkpoints, the resolved recipe in\n"
    "RUN_DIR/recipe.yaml, one progress line per step on stdout (and run.log_file).\n"
    "Ctrl-C (SIGINT) or SIGTERM stops after the current step with a checkpoint (exit\n"
    "status 130, or 143 for SIGTERM); a second one quits at once (resuming then starts\n"
    "from the last checkpoint).\n\n"
    "Many processes: mpirun -np N aha train RECIPE.yaml (srun --mpi=pmix under Slurm)\n"
    "trains data-parallel; rank 0 writes the run; see docs/distributed.md.\n\n"
    "  --set KEY=VALUE  override a recipe key, e.g. --set optim.lr=3e-6 (repeatable;\n"
    "                   lists in YAML: --set 'rollout.stop=[\"</answer>\"]';\n"
    "                   one reward's key: --set rewards.0.weight=0.5)\n"
    "  --dry-run        check the recipe (compiling its format patterns and loading its\n"
    "                   plug-ins, errors at their file:line) and print it resolved\n"
    "                   (defaults filled in) as YAML\n"
    "  --resume RUN_DIR continue a run from its newest checkpoint with RUN_DIR/recipe.yaml\n"
    "                   (steps recorded after that checkpoint are replaced); --set may\n"
    "                   change run.steps (e.g. to train longer), run.eval_every,\n"
    "                   run.checkpoint_every, run.keep_checkpoints, run.max_nan_skips,\n"
    "                   run.log_file. One aha train writes a run at a time (RUN_DIR/aha.lock);\n"
    "                   the checkpoint's files are checked against the CRC-32s in its\n"
    "                   state.json and run.db with PRAGMA quick_check first\n"
    "  --fall-back      with --resume: when the newest checkpoint is damaged, resume from\n"
    "                   the newest older one that passes its checks (the damaged one is\n"
    "                   renamed checkpoints/damaged-step-NNNNNNNN)\n"
    "  --new-store      with --resume: accept a missing or empty RUN_DIR/run.db and record\n"
    "                   from the checkpoint's step on in a new one (the steps before it are\n"
    "                   then not in the store)\n"
    "  -h, --help       this help\n\n"
    "Every recipe key is listed in docs/recipes.md.\n";

int cmd_train(int argc, char **argv) {
    static const struct option options[] = {
        {"set", required_argument, NULL, 's'},
        {"dry-run", no_argument, NULL, 'n'},
        {"resume", required_argument, NULL, 'r'},
        {"fall-back", no_argument, NULL, 'f'},
        {"new-store", no_argument, NULL, 'N'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    CliRecipeArgs args = {0};
    const char *resume = NULL;
    int fall_back = 0, new_store = 0;
    int opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
        case 's':
            if (cli_recipe_add_set(&args, optarg) != 0) return 1;
            break;
        case 'n': args.dry_run = 1; break;
        case 'r': resume = optarg; break;
        case 'f': fall_back = 1; break;
        case 'N': new_store = 1; break;
        case 'h':
            cli_recipe_args_free(&args);
            fputs(usage, stdout);
            return 0;
        default:
            cli_recipe_args_free(&args);
            return cli_usage_error("train", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (resume) {
        int extra = optind < argc || args.dry_run;
        int status = extra ? cli_usage_error("train", "--resume takes no recipe and no --dry-run")
                           : run_training(NULL, resume, args.sets, args.n_sets, new_store, fall_back);
        cli_recipe_args_free(&args);
        return status;
    }
    if (fall_back || new_store) {
        cli_recipe_args_free(&args);
        return cli_usage_error("train", "--fall-back and --new-store go with --resume RUN_DIR");
    }
    AhaRecipe recipe;
    int status = cli_recipe_load_positional("train", &args, argc, argv, AHA_PURPOSE_TRAIN, &recipe);
    if (status != 0) return status;
    if (args.dry_run)
        status = cli_recipe_dry_run("train", &recipe);
    else
        status = run_training(&recipe, NULL, NULL, 0, 0, 0);
    aha_recipe_free(&recipe);
    return status;
}
