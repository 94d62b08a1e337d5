package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/amld/amld/mpi"
)

// rshCmd is `amld rsh`: the rsh client mpirun runs, by hand.
func rshCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rsh [ssh options] NODE COMMAND...",
		Short: "Run a command on another node of this attempt, as ssh would (mpirun's rsh agent)",
		Long: `Run COMMAND on node NODE (a node ID from $AML_HOSTFILE) of the multi-node
attempt this runs in, through that node's agent: the words are joined by
spaces and run by /bin/sh -c in the attempt's work dir there, with stdio
passed and the exit status returned. It reads $AML_RSH_CONFIG, which the
agent sets for the attempt, checks the node's host key against the one the
head pinned, and skips ssh options such as -x and -o X. amld-rsh is the
same client as a static binary; mpirun runs that one.`,
		DisableFlagParsing: true,
		Run: func(c *cobra.Command, args []string) {
			if len(args) == 0 || len(args) == 1 && (args[0] == "--help" || args[0] == "-h") {
				_ = c.Help()
				return
			}
			os.Exit(mpi.RshMain(args, os.Getenv, os.Stdin, os.Stdout, os.Stderr))
		},
	}
}
