package main

import (
	"fmt"
	"runtime"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sincere-ml/sincere/internal/kernels"
	"github.com/sincere-ml/sincere/internal/kernels/backend"
)

func newVersionCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, the CPU kernels in use and whether CUDA is built in",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cpu, err := backend.OpenLossEngine(kernels.DeviceCPU, kernels.Options{})
			if err != nil {
				return err
			}
			cuda := "not built in (build with `make cuda` for NVIDIA GPUs)"
			if backend.CUDASupport {
				cuda = "built in; no usable GPU found"
				if eng, err := backend.OpenLossEngine(kernels.DeviceCUDA, kernels.Options{}); err == nil {
					if g, ok := eng.(kernels.Profiler); ok {
						info := g.Info()
						cuda = fmt.Sprintf("built in; %s (compute %d.%d, %d SMs, %.0f GiB), %s tiles by default",
							info.Name, info.Major, info.Minor, info.SMs, float64(info.Memory)/(1<<30), g.Precision())
					}
					closeEngine(eng)
				} else {
					cuda = "built in; " + err.Error()
				}
			}
			fmt.Fprintf(e.stdout, "sincere %s\n", version)
			fmt.Fprintf(e.stdout, "go:   %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
			fmt.Fprintf(e.stdout, "cpu:  %s\n", strings.TrimPrefix(cpu.Describe(), "cpu: "))
			fmt.Fprintf(e.stdout, "cuda: %s\n", cuda)
			return nil
		},
	}
}
