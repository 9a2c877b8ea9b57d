package deploy

import (
	"bufio"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailpoller/mailpoller/config"
)

// No Docker engine runs on the machines that run the tests, so the
// Dockerfile is checked as far as they allow: its final stage is a static
// base with no shell, runs as a non-root user and only copies files; the
// build command it runs makes a static binary; the default config it
// ships is valid once its variables are set.
func TestDockerfile(t *testing.T) {
	f, err := os.Open("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var stages [][]string // instructions per stage
	var build string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "FROM ") {
			stages = append(stages, nil)
		}
		if len(stages) == 0 {
			t.Fatalf("instruction before FROM: %q", line)
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], line)
		if strings.HasPrefix(line, "RUN CGO_ENABLED=0 go build") {
			build = strings.TrimPrefix(line, "RUN ")
		}
	}
	if len(stages) < 2 {
		t.Fatalf("want a build stage and a run stage, got %d stages", len(stages))
	}
	final := stages[len(stages)-1]
	if !strings.Contains(final[0], "distroless/static") {
		t.Errorf("final stage %q: want a static base without a shell", final[0])
	}
	var user, entry string
	for _, in := range final[1:] {
		switch op, arg, _ := strings.Cut(in, " "); op {
		case "RUN":
			t.Errorf("final stage runs %q: the image has no shell", in)
		case "USER":
			user = arg
		case "ENTRYPOINT":
			entry = arg
		}
	}
	if user == "" || strings.HasPrefix(user, "0") || strings.HasPrefix(user, "root") {
		t.Errorf("USER %q: want a non-root user", user)
	}
	if !strings.HasPrefix(entry, "[") {
		t.Errorf("ENTRYPOINT %q: want the exec form (no shell to run it)", entry)
	}
	if build == "" {
		t.Fatal("no `RUN CGO_ENABLED=0 go build` in the Dockerfile")
	}

	// The Dockerfile's own build command, run here: the binary must be
	// static (no ELF interpreter), as a distroless/static base needs.
	out := filepath.Join(t.TempDir(), "mailpoller")
	args := strings.Fields(strings.TrimPrefix(build, "CGO_ENABLED=0 "))
	for i, a := range args {
		if a == "/out/mailpoller" {
			args[i] = out
		}
		args[i] = strings.Trim(args[i], `"`)
	}
	if testing.Short() {
		t.Skip("-short: not building the binary")
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", build, err, b)
	}
	bin, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer bin.Close()
	for _, p := range bin.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary has an ELF interpreter: it is not static and will not start on distroless/static")
		}
	}

	// The shipped default config is valid once its variables are set.
	for k, v := range map[string]string{"NATS_URL": "nats://nats:4222", "TENANT_ID": "11111111-1111-1111-1111-111111111111",
		"CLIENT_ID": "22222222-2222-2222-2222-222222222222", "CLIENT_SECRET": "s", "MAILBOX": "support@contoso.com"} {
		t.Setenv(k, v)
	}
	cfg, err := config.Load("docker/mailpoller.yaml")
	if err != nil {
		t.Fatalf("deploy/docker/mailpoller.yaml: %v", err)
	}
	if cfg.HTTP.Listen != "0.0.0.0:9464" {
		t.Errorf("http.listen %q: in a container it must listen beyond loopback", cfg.HTTP.Listen)
	}
}
