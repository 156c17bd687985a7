/* cli.h - subcommands of the `ember` program. Each takes the arguments after
 * its name (argv[0] is the subcommand), prints errors as one line on stderr
 * and returns the process exit status. */
#ifndef EM_CLI_H
#define EM_CLI_H

int cmd_run(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_mkmodel(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_keys(int argc, char **argv);
int cmd_usage(int argc, char **argv);
int cmd_redact(int argc, char **argv);
int cmd_guard(int argc, char **argv);
int cmd_verify(int argc, char **argv);

/* Default model path when -m is not given (the bundled model). */
const char *cli_default_model(void);

#endif
