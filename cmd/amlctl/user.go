package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/amld/amld/api"
)

// whoamiCmd is `amlctl whoami`.
func (a *app) whoamiCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Say who the token belongs to",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			w, err := c.Whoami(cmd.Context())
			if err != nil {
				return err
			}
			if a.jsonOut() {
				return a.printJSON(w)
			}
			fmt.Fprintf(a.stdout, "%s (%s) at %s\n", w.Name, w.Role, c.Addresses()[0])
			return nil
		},
	}
}

// userCmd is `amlctl user`: users (admins only).
func (a *app) userCmd() *cobra.Command {
	c := group("user", "Manage users")
	c.AddCommand(a.userCreateCmd())
	return c
}

// userCreateCmd is `amlctl user create NAME --role user|admin`.
func (a *app) userCreateCmd() *cobra.Command {
	var role string
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a user and print its token (shown this once)",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if role != api.RoleUser && role != api.RoleAdmin {
				return usagef("--role must be user or admin, not %q", role)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			u, err := c.CreateUser(cmd.Context(), args[0], role)
			if err != nil {
				return fmt.Errorf("create user %s: %w", args[0], err)
			}
			if a.jsonOut() {
				return a.printJSON(u)
			}
			fmt.Fprintf(a.stdout, "Created user %s (%s). Its token, shown this once:\n%s\n", u.User.Name, u.User.Role, u.Token)
			return nil
		},
	}
	cmd.Flags().StringVar(&role, "role", api.RoleUser, "user or admin")
	return cmd
}
