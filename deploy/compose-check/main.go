// compose-check loads a Compose file with compose-go, the parser `docker compose` itself uses,
// as `docker compose config` does: .env and OS environment, ${VAR:-default} interpolation,
// schema validation, normalization, consistency checks and resolved paths. It prints the
// resolved model as JSON (like `docker compose config --format json`), or nothing with -q,
// and exits 1 with the loader's error if the file is not a valid Compose project.
//
// For machines with a docker CLI but no compose plugin (tests/deploy/test_stack.py):
//
//	go build -o ~/.cache/cirt-hub/compose-check ./deploy/compose-check
//	~/.cache/cirt-hub/compose-check -f docker-compose.yml -q
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
)

type files []string

func (f *files) String() string     { return strings.Join(*f, ",") }
func (f *files) Set(v string) error { *f = append(*f, v); return nil }

func main() {
	var configs, envFiles files
	flag.Var(&configs, "f", "Compose file (repeatable; default: compose.yaml, docker-compose.yml, ...)")
	flag.Var(&envFiles, "env-file", "environment file (repeatable; default: .env in the project directory)")
	name := flag.String("p", "", "project name (default: `name:` in the file, else the directory)")
	dir := flag.String("project-directory", "", "project directory (default: the first file's directory)")
	quiet := flag.Bool("q", false, "only validate: print nothing")
	flag.Parse()
	if flag.NArg() > 0 {
		fail(fmt.Errorf("unexpected arguments: %v", flag.Args()))
	}

	options, err := cli.NewProjectOptions(configs,
		// The option order of `docker compose` (cmd/compose/compose.go, toProjectOptions).
		cli.WithWorkingDirectory(*dir),
		cli.WithOsEnv,
		cli.WithEnvFiles(envFiles...),
		cli.WithDotEnv,
		cli.WithConfigFileEnv,
		cli.WithDefaultConfigPath,
		cli.WithEnvFiles(envFiles...),
		cli.WithDotEnv,
		cli.WithDefaultProfiles(),
		cli.WithName(*name),
		// What `docker compose config` adds (cmd/compose/config.go), all at their defaults.
		cli.WithInterpolation(true),
		cli.WithResolvedPaths(true),
		cli.WithNormalization(true),
		cli.WithConsistency(true),
		cli.WithDiscardEnvFile,
	)
	if err != nil {
		fail(err)
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		fail(err)
	}
	if *quiet {
		return
	}
	out, err := project.MarshalJSON()
	if err != nil {
		fail(err)
	}
	fmt.Println(string(out))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "compose-check:", err)
	os.Exit(1)
}
