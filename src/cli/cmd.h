/* cmd.h: the subcommands of the quotatop binary (private to src/).
 * Each takes the arguments after the subcommand name (argv[0] is the
 * subcommand) and returns the process exit status of DESIGN.md:
 * 0 all ok, 1 some job not ok, 2 usage or config error. */
#ifndef QT_CMD_H
#define QT_CMD_H

#define QT_VERSION "0.5.0"   /* printed by `quotatop --version` */

int qt_cmd_check(int argc, char **argv);
int qt_cmd_mock(int argc, char **argv);
int qt_cmd_run(int argc, char **argv);
int qt_cmd_serve(int argc, char **argv);
int qt_cmd_demo(int argc, char **argv);
int qt_cmd_spend(int argc, char **argv);
int qt_cmd_replay(int argc, char **argv);
int qt_cmd_top(int argc, char **argv);

#endif
