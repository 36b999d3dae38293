package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The deployment files are tested here, where `raftlite serve`'s flags are
// defined, because Docker and Kubernetes cannot run on CI's machine: what
// can go stale in them is a build command or a flag that the binary no
// longer has, and each is checked against the real ones.

// dockerfile is the Dockerfile's instructions, continuation lines joined.
type dockerfile []dockerInstruction

type dockerInstruction struct {
	cmd  string // upper case: FROM, RUN, ...
	args string
}

func readDockerfile(t *testing.T) dockerfile {
	t.Helper()
	raw, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var out dockerfile
	var cur strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if strings.HasSuffix(line, `\`) {
			cur.WriteString(strings.TrimSuffix(line, `\`) + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, dockerInstruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

// finalStage returns the instructions after the last FROM, and its image.
func (d dockerfile) finalStage() (string, dockerfile) {
	last := -1
	for i, x := range d {
		if x.cmd == "FROM" {
			last = i
		}
	}
	if last < 0 {
		return "", nil
	}
	return d[last].args, d[last+1:]
}

func (d dockerfile) find(cmd string) []string {
	var out []string
	for _, x := range d {
		if x.cmd == cmd {
			out = append(out, x.args)
		}
	}
	return out
}

// execForm reads an instruction's JSON array form.
func execForm(t *testing.T, what, args string) []string {
	t.Helper()
	var words []string
	if err := json.Unmarshal([]byte(args), &words); err != nil {
		t.Fatalf("%s is not in exec (JSON array) form: %q: %v", what, args, err)
	}
	return words
}

// entrypointServeArgs returns the serve flags of the image's ENTRYPOINT.
func entrypointServeArgs(t *testing.T, stage dockerfile) []string {
	t.Helper()
	eps := stage.find("ENTRYPOINT")
	if len(eps) != 1 {
		t.Fatalf("the final stage has %d ENTRYPOINTs, want 1", len(eps))
	}
	ep := execForm(t, "ENTRYPOINT", eps[0])
	if len(ep) < 2 || ep[0] != "/raftlite" || ep[1] != "serve" {
		t.Fatalf("ENTRYPOINT %q does not run /raftlite serve", ep)
	}
	return ep[2:]
}

// mustParseServe parses a serve command line as the binary would.
func mustParseServe(t *testing.T, what string, args []string) *serveFlags {
	t.Helper()
	var stderr bytes.Buffer
	f, err := parseServeFlags(args, io.Discard, &stderr)
	if err != nil {
		t.Fatalf("%s: raftlite serve %q: %v %s", what, args, err, stderr.String())
	}
	if w := f.rqlited.warnings(); len(w) > 0 {
		t.Fatalf("%s: raftlite serve %q warns: %q", what, args, w)
	}
	return f
}

// TestDockerfile: the image builds the static binary with the command the
// README and .ci/run use (CGO_ENABLED=0 go build ... -o FILE .), runs it
// FROM scratch as a non-root user with /data on a volume, checks health
// with a subcommand the binary has, and its entrypoint and default
// command are valid `raftlite serve` flags that put the data in /data.
func TestDockerfile(t *testing.T) {
	d := readDockerfile(t)
	build := regexp.MustCompile(`(^|&& )CGO_ENABLED=0 go build (.* )?-o (\S+) \.( |$)`)
	var binary string
	for _, run := range d.find("RUN") {
		if m := build.FindStringSubmatch(run); m != nil {
			binary = m[3]
		}
	}
	if binary == "" {
		t.Fatalf("no RUN builds the static binary with CGO_ENABLED=0 go build -o FILE .: %q", d.find("RUN"))
	}
	ci, err := os.ReadFile(filepath.Join(".ci", "run"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(ci), "export CGO_ENABLED=0") || !strings.Contains(string(ci), "go build -o bin/raftlite .") {
		t.Fatal(".ci/run no longer builds with CGO_ENABLED=0 go build -o bin/raftlite .: update the Dockerfile and this test together")
	}

	image, stage := d.finalStage()
	if image != "scratch" && !strings.HasPrefix(image, "gcr.io/distroless/") {
		t.Errorf("final image %q, want scratch or distroless", image)
	}
	if !slices.ContainsFunc(stage.find("COPY"), func(c string) bool { return strings.HasSuffix(c, binary+" /raftlite") }) {
		t.Errorf("the final stage does not copy %s to /raftlite: %q", binary, stage.find("COPY"))
	}
	users := stage.find("USER")
	if len(users) != 1 {
		t.Fatalf("USER %q: want one non-root USER", users)
	}
	if uid, _, _ := strings.Cut(users[0], ":"); uid == "0" || uid == "root" {
		t.Errorf("USER %s runs as root", users[0])
	}
	if v := stage.find("VOLUME"); len(v) != 1 || v[0] != "/data" {
		t.Errorf("VOLUME %q, want /data", v)
	}

	hc := stage.find("HEALTHCHECK")
	if len(hc) != 1 {
		t.Fatalf("HEALTHCHECK %q, want one", hc)
	}
	_, cmd, ok := strings.Cut(hc[0], "CMD ")
	if !ok {
		t.Fatalf("HEALTHCHECK %q has no CMD", hc[0])
	}
	probe := execForm(t, "HEALTHCHECK CMD", cmd)
	if len(probe) < 2 || probe[0] != "/raftlite" || probe[1] != "healthcheck" {
		t.Fatalf("HEALTHCHECK CMD %q does not run /raftlite healthcheck", probe)
	}
	// The probe's flags parse (-h after them prints help and exits 0).
	if got := run(append(probe[1:], "-h"), io.Discard, io.Discard); got != 0 {
		t.Errorf("raftlite %q -h: exit %d: a flag of the HEALTHCHECK is not one of raftlite healthcheck's", probe[1:], got)
	}

	cmds := stage.find("CMD")
	if len(cmds) != 1 {
		t.Fatalf("CMD %q, want one", cmds)
	}
	f := mustParseServe(t, "ENTRYPOINT + CMD", append(entrypointServeArgs(t, stage), execForm(t, "CMD", cmds[0])...))
	if f.dataDir != "/data" {
		t.Errorf("the default command keeps data in %q, not the /data volume", f.dataDir)
	}
}

// composeFile is the part of docker-compose.yml the test reads.
type composeFile struct {
	Services map[string]struct {
		Hostname string   `yaml:"hostname"`
		Command  []string `yaml:"command"`
		Volumes  []string `yaml:"volumes"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
}

// TestDockerCompose: each node's command, after the image's entrypoint,
// is a valid `raftlite serve` command line advertising its own service
// name, keeping its data on its own named volume at /data, and listing
// every node by advertised Raft address with -bootstrap-expect equal to
// their number, so the three bootstrap one cluster.
func TestDockerCompose(t *testing.T) {
	raw, err := os.ReadFile("docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(raw, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	if len(c.Services) < 3 {
		t.Fatalf("%d services, want a three-node cluster", len(c.Services))
	}
	_, stage := readDockerfile(t).finalStage()
	entry := entrypointServeArgs(t, stage)
	var raftAddrs []string
	flags := map[string]*serveFlags{}
	for name, svc := range c.Services {
		f := mustParseServe(t, "service "+name, append(slices.Clone(entry), svc.Command...))
		flags[name] = f
		host := svc.Hostname
		if host == "" {
			host = name
		}
		if !strings.HasPrefix(f.raftAdvAddr, host+":") || !strings.HasPrefix(f.httpAdvAddr, host+":") {
			t.Errorf("service %s advertises %s and %s, not its own name %s", name, f.raftAdvAddr, f.httpAdvAddr, host)
		}
		if f.dataDir != "/data" {
			t.Errorf("service %s keeps its data in %s, not /data", name, f.dataDir)
		}
		vol := fmt.Sprintf("%s-data:/data", name)
		if !slices.Contains(svc.Volumes, vol) {
			t.Errorf("service %s volumes %q, want %s", name, svc.Volumes, vol)
		}
		if _, ok := c.Volumes[name+"-data"]; !ok {
			t.Errorf("volume %s-data is not declared", name)
		}
		raftAddrs = append(raftAddrs, f.raftAdvAddr)
	}
	slices.Sort(raftAddrs)
	for name, f := range flags {
		join := f.joinAddrs()
		slices.Sort(join)
		if !slices.Equal(join, raftAddrs) || f.bootstrapExpect != len(c.Services) {
			t.Errorf("service %s: -join %q -bootstrap-expect %d, want every node's Raft address %q and %d", name, join, f.bootstrapExpect, raftAddrs, len(c.Services))
		}
	}
}

// k8sObject is the part of a Kubernetes manifest the test reads.
type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec struct {
		// Service
		ClusterIP                string         `yaml:"clusterIP"`
		PublishNotReadyAddresses bool           `yaml:"publishNotReadyAddresses"`
		Selector                 map[string]any `yaml:"selector"` // a Service's labels; a PDB's is read into pdbSelector
		Ports                    []struct {
			Name string `yaml:"name"`
			Port int    `yaml:"port"`
		} `yaml:"ports"`
		// StatefulSet
		ServiceName         string `yaml:"serviceName"`
		Replicas            int    `yaml:"replicas"`
		PodManagementPolicy string `yaml:"podManagementPolicy"`
		Template            struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				SecurityContext struct {
					RunAsNonRoot bool `yaml:"runAsNonRoot"`
				} `yaml:"securityContext"`
				Containers []struct {
					Args []string `yaml:"args"`
					Env  []struct {
						Name string `yaml:"name"`
					} `yaml:"env"`
					ReadinessProbe struct {
						HTTPGet struct {
							Path string `yaml:"path"`
						} `yaml:"httpGet"`
					} `yaml:"readinessProbe"`
					VolumeMounts []struct {
						Name      string `yaml:"name"`
						MountPath string `yaml:"mountPath"`
					} `yaml:"volumeMounts"`
				} `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
		VolumeClaimTemplates []struct {
			Metadata struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
		} `yaml:"volumeClaimTemplates"`
		// PodDisruptionBudget (its selector is a label selector)
		MaxUnavailable int `yaml:"maxUnavailable"`
		MinAvailable   int `yaml:"minAvailable"`
	} `yaml:"spec"`
	// pdbSelector is the PodDisruptionBudget's spec.selector.matchLabels.
	pdbSelector map[string]string
}

func readK8s(t *testing.T) map[string]k8sObject {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("deploy", "k8s", "*.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no manifests in deploy/k8s: %v", err)
	}
	out := map[string]k8sObject{}
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		for {
			var node yaml.Node
			if err := dec.Decode(&node); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			var obj k8sObject
			if err := node.Decode(&obj); err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			if obj.Kind == "PodDisruptionBudget" {
				var pdb struct {
					Spec struct {
						Selector struct {
							MatchLabels map[string]string `yaml:"matchLabels"`
						} `yaml:"selector"`
					} `yaml:"spec"`
				}
				if err := node.Decode(&pdb); err != nil {
					t.Fatalf("%s: %v", p, err)
				}
				obj.pdbSelector = pdb.Spec.Selector.MatchLabels
			}
			if obj.Kind == "" || obj.Metadata.Name == "" {
				t.Fatalf("%s: an object without kind or name", p)
			}
			out[obj.Kind+"/"+obj.Metadata.Name] = obj
		}
	}
	return out
}

// envRef matches Kubernetes' $(VAR) references in container args.
var envRef = regexp.MustCompile(`\$\(([A-Z_][A-Z0-9_]*)\)`)

// TestKubernetesManifests: the StatefulSet's pods are found through a
// headless Service that publishes not-ready pods; the container's args,
// after the image's entrypoint and with $(VAR)s of its env filled in,
// are a valid `raftlite serve` command line doing DNS discovery of that
// Service's name and Raft port with -bootstrap-expect equal to the
// replicas, advertising the pod's stable name, with data on the claimed
// volume; readiness is /readyz; pods start in parallel and run as
// non-root; a PodDisruptionBudget over the same pods keeps a quorum.
func TestKubernetesManifests(t *testing.T) {
	objs := readK8s(t)
	var set k8sObject
	for key, o := range objs {
		if strings.HasPrefix(key, "StatefulSet/") {
			set = o
		}
	}
	if set.Kind == "" {
		t.Fatal("no StatefulSet in deploy/k8s")
	}
	headless, ok := objs["Service/"+set.Spec.ServiceName]
	if !ok || headless.Spec.ClusterIP != "None" || !headless.Spec.PublishNotReadyAddresses {
		t.Fatalf("serviceName %q: want a headless Service (clusterIP None) with publishNotReadyAddresses", set.Spec.ServiceName)
	}
	labels := set.Spec.Template.Metadata.Labels
	for k, v := range headless.Spec.Selector {
		if labels[k] != fmt.Sprint(v) {
			t.Errorf("the headless Service selects %s=%s, which the pods lack", k, v)
		}
	}
	raftPort := 0
	for _, p := range headless.Spec.Ports {
		if p.Name == "raft" {
			raftPort = p.Port
		}
	}
	if set.Spec.PodManagementPolicy != "Parallel" {
		t.Errorf("podManagementPolicy %q: the pods must start together to bootstrap", set.Spec.PodManagementPolicy)
	}
	if !set.Spec.Template.Spec.SecurityContext.RunAsNonRoot {
		t.Error("the pods may run as root")
	}
	if len(set.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(set.Spec.Template.Spec.Containers))
	}
	ctr := set.Spec.Template.Spec.Containers[0]
	if ctr.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("readiness probe %q, want /readyz", ctr.ReadinessProbe.HTTPGet.Path)
	}

	values := map[string]string{"POD_NAME": "raftlite-0", "POD_NAMESPACE": "default"}
	var args []string
	for _, a := range ctr.Args {
		args = append(args, envRef.ReplaceAllStringFunc(a, func(ref string) string {
			name := envRef.FindStringSubmatch(ref)[1]
			if !slices.ContainsFunc(ctr.Env, func(e struct {
				Name string `yaml:"name"`
			}) bool {
				return e.Name == name
			}) {
				t.Errorf("arg %q refers to $(%s), which the container's env does not define", a, name)
			}
			return values[name]
		}))
	}
	_, stage := readDockerfile(t).finalStage()
	f := mustParseServe(t, "StatefulSet args", append(entrypointServeArgs(t, stage), args...))
	d := f.rqlited.disco
	if d == nil || d.mode != "dns" || d.cfg.Name != set.Spec.ServiceName || d.cfg.Port != raftPort {
		t.Fatalf("discovery %+v: want -disco-mode dns of %s on its raft port %d", d, set.Spec.ServiceName, raftPort)
	}
	if f.bootstrapExpect != set.Spec.Replicas || f.bootstrapExpect < 3 {
		t.Errorf("-bootstrap-expect %d with %d replicas", f.bootstrapExpect, set.Spec.Replicas)
	}
	podHost := "raftlite-0." + set.Spec.ServiceName + ".default.svc.cluster.local"
	if f.raftAdvAddr != podHost+":"+strconv.Itoa(raftPort) || !strings.HasPrefix(f.httpAdvAddr, podHost+":") || f.nodeID != "raftlite-0" {
		t.Errorf("pod raftlite-0 advertises %s and %s as node %s, want its stable name %s", f.raftAdvAddr, f.httpAdvAddr, f.nodeID, podHost)
	}
	mounted := slices.ContainsFunc(ctr.VolumeMounts, func(m struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	}) bool {
		return m.MountPath == f.dataDir && len(set.Spec.VolumeClaimTemplates) > 0 && m.Name == set.Spec.VolumeClaimTemplates[0].Metadata.Name
	})
	if !mounted {
		t.Errorf("the data directory %s is not the claimed volume", f.dataDir)
	}

	var pdb *k8sObject
	for key, o := range objs {
		if strings.HasPrefix(key, "PodDisruptionBudget/") {
			pdb = &o
		}
	}
	if pdb == nil {
		t.Fatal("no PodDisruptionBudget")
	}
	for k, v := range pdb.pdbSelector {
		if labels[k] != v {
			t.Errorf("the PodDisruptionBudget selects %s=%s, which the pods lack", k, v)
		}
	}
	quorum := set.Spec.Replicas/2 + 1
	if pdb.Spec.MaxUnavailable != 0 && set.Spec.Replicas-pdb.Spec.MaxUnavailable < quorum ||
		pdb.Spec.MaxUnavailable == 0 && pdb.Spec.MinAvailable < quorum {
		t.Errorf("PodDisruptionBudget maxUnavailable %d minAvailable %d lets a quorum of %d go", pdb.Spec.MaxUnavailable, pdb.Spec.MinAvailable, quorum)
	}
}
