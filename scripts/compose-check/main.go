// compose-check loads a compose file the way `docker compose` does (compose-go: the compose specification's schema,
// interpolation from the environment and .env, merging, consistency checks) and prints the resolved project as JSON,
// so the project's tests can check policy on exactly what compose would run. Any error exits 1 with the reason, and
// so does any warning (an unset variable, an obsolete key): what compose would only warn about is a defect here.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/sirupsen/logrus"
)

// warnings counts what compose-go reports below error level but above info.
type warnings struct{ count int }

func (w *warnings) Levels() []logrus.Level { return []logrus.Level{logrus.WarnLevel} }
func (w *warnings) Fire(*logrus.Entry) error {
	w.count++
	return nil
}

func main() {
	if len(os.Args) != 2 || os.Args[1] == "-h" || os.Args[1] == "--help" {
		fmt.Fprintln(os.Stderr, "usage: compose-check <compose file>  (reads .env beside it; prints the resolved project as JSON)")
		os.Exit(2)
	}
	file, err := filepath.Abs(os.Args[1])
	if err != nil {
		fail(err)
	}
	seen := &warnings{}
	logrus.AddHook(seen)
	options, err := cli.NewProjectOptions(
		[]string{file},
		cli.WithWorkingDirectory(filepath.Dir(file)),
		cli.WithOsEnv,
		cli.WithEnvFiles(),
		cli.WithDotEnv,
		cli.WithConsistency(true),
		cli.WithResolvedPaths(false),
	)
	if err != nil {
		fail(err)
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		fail(err)
	}
	if seen.count > 0 {
		fail(fmt.Errorf("%d warning(s) above", seen.count))
	}
	out, err := project.MarshalJSON()
	if err != nil {
		fail(err)
	}
	os.Stdout.Write(append(out, '\n'))
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "compose-check: %v\n", err)
	os.Exit(1)
}
