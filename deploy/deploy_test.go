// Package deploy_test checks the files in deploy/ against each other and
// against the code: the dashboard's queries name only metrics and labels
// the worker exports, and Prometheus, Grafana, compose and Kubernetes agree
// on ports, paths, service names and the datasource uid.
package deploy_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/ebbhq/ebb/internal/ebbtest"
	"github.com/ebbhq/ebb/internal/metrics"
)

// Where compose mounts things and what the worker listens on; each is
// checked against the file that states it.
const (
	dashboardMount = "/etc/grafana/dashboards"
	datasourceUID  = "prometheus"
	metricsPort    = 9090
)

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(raw, v), path)
}

// dashboard is the part of Grafana's JSON model the checks read.
type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Definition string          `json:"definition"`
			Datasource *datasource     `json:"datasource"`
			Current    struct {
				Value any `json:"value"`
			} `json:"current"`
		} `json:"list"`
	} `json:"templating"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	ID         int                      `json:"id"`
	Type       string                   `json:"type"`
	Title      string                   `json:"title"`
	Datasource *datasource              `json:"datasource"`
	GridPos    struct{ X, Y, W, H int } `json:"gridPos"`
	Targets    []struct {
		RefID      string      `json:"refId"`
		Expr       string      `json:"expr"`
		Datasource *datasource `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	raw, err := os.ReadFile("grafana/ebb.json")
	require.NoError(t, err)
	var d dashboard
	require.NoError(t, json.Unmarshal(raw, &d), "grafana/ebb.json")
	return d
}

// recorder is a Registerer that keeps what metrics.New registers, so the
// test sees every collector without a list of its own to keep in step.
type recorder struct{ cs []prometheus.Collector }

func (r *recorder) Register(c prometheus.Collector) error   { r.cs = append(r.cs, c); return nil }
func (r *recorder) MustRegister(cs ...prometheus.Collector) { r.cs = append(r.cs, cs...) }
func (r *recorder) Unregister(prometheus.Collector) bool    { return false }

var descRE = regexp.MustCompile(`fqName: "([^"]+)".*variableLabels: \{([^}]*)\}`)

// exported maps every metric name the worker can export to its labels:
// ebb's from the collectors' descriptions, asynq's from a real scrape of a
// real queue (its collector describes nothing up front).
func exported(t *testing.T) map[string][]string {
	t.Helper()
	names := map[string][]string{}
	rec := &recorder{}
	_, err := metrics.New(rec)
	require.NoError(t, err)
	progress, err := metrics.NewProgressCollector(metrics.ProgressConfig{
		JobsFunc:     func(context.Context) ([]string, error) { return nil, nil },
		ProgressFunc: func(context.Context, string) (metrics.JobProgress, error) { return metrics.JobProgress{}, nil },
	})
	require.NoError(t, err)
	rec.MustRegister(progress)
	for _, c := range rec.cs {
		ch := make(chan *prometheus.Desc, 16)
		c.Describe(ch)
		close(ch)
		for d := range ch {
			m := descRE.FindStringSubmatch(d.String())
			require.NotNil(t, m, d.String())
			var labels []string
			for l := range strings.SplitSeq(m[2], ",") {
				if l != "" {
					labels = append(labels, l)
				}
			}
			names[m[1]] = labels
		}
	}

	env := ebbtest.Redis(t)
	client := asynq.NewClientFromRedisClient(env.Client)
	t.Cleanup(func() { _ = client.Close() })
	inspector := asynq.NewInspectorFromRedisClient(env.Client)
	t.Cleanup(func() { _ = inspector.Close() })
	_, err = client.Enqueue(asynq.NewTask("ebbtest", nil), asynq.Queue(env.Queue))
	require.NoError(t, err)
	queues, err := metrics.NewQueueCollector(inspector, metrics.QueueConfig{
		PingFunc: func(ctx context.Context) error { return env.Client.Ping(ctx).Err() },
	})
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(queues))
	// asynq's collector drops a scrape in which another test's queue
	// vanished: poll.
	ebbtest.Eventually(t, "asynq queue metrics", func() bool {
		mfs, err := reg.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			var labels []string
			for _, l := range mf.GetMetric()[0].GetLabel() {
				labels = append(labels, l.GetName())
			}
			names[mf.GetName()] = labels
		}
		return len(mfs) > 0
	})
	return names
}

var (
	metricRE   = regexp.MustCompile(`\b((?:ebb|asynq)_[a-zA-Z0-9_]+)(\{[^}]*\})?`)
	matcherRE  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
	groupingRE = regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
)

// targetLabels are set by Prometheus on every series it scrapes.
var targetLabels = []string{"instance", "job"}

// checkExpr returns what is wrong with a query: a metric the worker does
// not export, or a label that none of its metrics carries.
func checkExpr(expr string, names map[string][]string) []string {
	var problems, labels []string
	for _, m := range metricRE.FindAllStringSubmatch(expr, -1) {
		name, have := m[1], []string(nil)
		if l, ok := names[name]; ok {
			have = l
		} else if base, suffix, ok := histogramSeries(name); ok && names[base] != nil {
			have = names[base]
			if suffix == "_bucket" {
				have = append(slices.Clone(have), "le")
			}
		} else {
			problems = append(problems, "unknown metric "+name)
			continue
		}
		labels = append(labels, have...)
		for _, sel := range matcherRE.FindAllStringSubmatch(m[2], -1) {
			if !slices.Contains(have, sel[1]) && !slices.Contains(targetLabels, sel[1]) {
				problems = append(problems, name+" has no label "+sel[1])
			}
		}
	}
	for _, g := range groupingRE.FindAllStringSubmatch(expr, -1) {
		for l := range strings.SplitSeq(g[1], ",") {
			l = strings.TrimSpace(l)
			if l != "" && !slices.Contains(labels, l) && !slices.Contains(targetLabels, l) {
				problems = append(problems, "grouping by "+l+", a label none of the metrics has")
			}
		}
	}
	return problems
}

func histogramSeries(name string) (base, suffix string, ok bool) {
	for _, s := range []string{"_bucket", "_sum", "_count"} {
		if b, found := strings.CutSuffix(name, s); found {
			return b, s, true
		}
	}
	return "", "", false
}

// TestDashboard: the dashboard parses, every panel queries the datasource
// variable, and every query names only metrics and labels the worker
// exports, so a renamed metric fails here rather than as an empty panel.
func TestDashboard(t *testing.T) {
	t.Parallel()
	d := loadDashboard(t)
	names := exported(t)
	require.Equal(t, "ebb", d.UID)
	require.GreaterOrEqual(t, d.SchemaVersion, 39)

	vars := map[string]int{}
	for i, v := range d.Templating.List {
		vars[v.Name] = i
	}
	require.Contains(t, vars, "DS_PROMETHEUS")
	ds := d.Templating.List[vars["DS_PROMETHEUS"]]
	require.Equal(t, "datasource", ds.Type)
	require.Equal(t, datasourceUID, ds.Current.Value, "default datasource: the provisioned one")
	require.Contains(t, vars, "backfill")
	job := d.Templating.List[vars["backfill"]]
	// ebb_ranges, not a per-worker counter: every worker exports it for
	// every job from Redis, so queued jobs and dry runs (no rows written)
	// are in the list too.
	require.Equal(t, "label_values(ebb_ranges, backfill)", job.Definition)
	require.Contains(t, string(job.Query), job.Definition)
	require.Equal(t, "${DS_PROMETHEUS}", job.Datasource.UID)
	require.Empty(t, checkExpr(job.Definition, names))

	ids := map[int]bool{}
	var queries int
	var walk func(ps []panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			require.False(t, ids[p.ID], "panel id %d twice", p.ID)
			ids[p.ID] = true
			require.LessOrEqual(t, p.GridPos.X+p.GridPos.W, 24, p.Title)
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			require.NotNil(t, p.Datasource, p.Title)
			require.Equal(t, "${DS_PROMETHEUS}", p.Datasource.UID, p.Title)
			require.NotEmpty(t, p.Targets, p.Title)
			for _, tg := range p.Targets {
				require.NotEmpty(t, tg.Expr, "%s %s", p.Title, tg.RefID)
				require.Empty(t, checkExpr(tg.Expr, names), "%s %s: %s", p.Title, tg.RefID, tg.Expr)
				if strings.Contains(tg.Expr, "ebb_") {
					require.Contains(t, tg.Expr, `backfill=~"$backfill"`, "%s %s follows the backfill variable", p.Title, tg.RefID)
				}
				queries++
			}
		}
	}
	walk(d.Panels)
	require.Positive(t, queries)

	// The panels the dashboard promises, by the metric each reads.
	var all strings.Builder
	var collect func(ps []panel)
	collect = func(ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				all.WriteString(tg.Expr + "\n")
			}
			collect(p.Panels)
		}
	}
	collect(d.Panels)
	for _, want := range []string{"ebb_progress_ratio", "ebb_ranges", "rate(ebb_rows_total", "ebb_batch_duration_seconds_bucket",
		"ebb_batch_size", "ebb_guard_signal", "ebb_guard_threshold", "ebb_guard_state", "ebb_paused",
		"ebb_rate_limit_wait_seconds_total", "ebb_eta_seconds", "asynq_tasks_enqueued_total"} {
		require.Contains(t, all.String(), want)
	}
}

// TestCheckExpr: the query check itself catches what it is for.
func TestCheckExpr(t *testing.T) {
	t.Parallel()
	names := map[string][]string{"ebb_rows_total": {"job"}, "ebb_batch_duration_seconds": {"job"}}
	tests := []struct {
		expr string
		want []string
	}{
		{`sum by (job) (rate(ebb_rows_total{job=~"$job"}[1m]))`, nil},
		{`histogram_quantile(0.95, sum by (le, job) (rate(ebb_batch_duration_seconds_bucket[5m])))`, nil},
		{`max by (instance) (ebb_rows_total)`, nil},
		{`rate(ebb_row_total[1m])`, []string{"unknown metric ebb_row_total"}},
		{`ebb_rows_total{state="done"}`, []string{"ebb_rows_total has no label state"}},
		{`sum by (le) (ebb_rows_total)`, []string{"grouping by le, a label none of the metrics has"}},
	}
	for _, tc := range tests {
		t.Run(tc.expr, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, checkExpr(tc.expr, names))
		})
	}
}

// TestPrometheusConfig: Prometheus finds every compose worker replica on
// the port it listens on, often, and keeps ebb's job label.
func TestPrometheusConfig(t *testing.T) {
	t.Parallel()
	var cfg struct {
		ScrapeConfigs []struct {
			JobName        string `yaml:"job_name"`
			ScrapeInterval string `yaml:"scrape_interval"`
			MetricsPath    string `yaml:"metrics_path"`
			HonorLabels    bool   `yaml:"honor_labels"`
			DNSSD          []struct {
				Names []string `yaml:"names"`
				Type  string   `yaml:"type"`
				Port  int      `yaml:"port"`
			} `yaml:"dns_sd_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, "prometheus/prometheus.yml", &cfg)
	require.Len(t, cfg.ScrapeConfigs, 1)
	sc := cfg.ScrapeConfigs[0]
	require.Equal(t, "5s", sc.ScrapeInterval)
	require.Equal(t, "/metrics", sc.MetricsPath)
	require.False(t, sc.HonorLabels, "ebb's label is backfill: Prometheus's own job label must stay")
	require.Len(t, sc.DNSSD, 1)
	require.Equal(t, []string{"worker"}, sc.DNSSD[0].Names)
	require.Equal(t, "A", sc.DNSSD[0].Type)
	require.Equal(t, metricsPort, sc.DNSSD[0].Port)
}

// TestGrafanaProvisioning: the datasource carries the uid the dashboard
// defaults to, and the dashboard provider reads where compose mounts it.
func TestGrafanaProvisioning(t *testing.T) {
	t.Parallel()
	var ds struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			UID  string `yaml:"uid"`
			Type string `yaml:"type"`
			URL  string `yaml:"url"`
		} `yaml:"datasources"`
	}
	readYAML(t, "grafana/provisioning/datasources/prometheus.yml", &ds)
	require.Equal(t, 1, ds.APIVersion)
	require.Len(t, ds.Datasources, 1)
	require.Equal(t, datasourceUID, ds.Datasources[0].UID)
	require.Equal(t, "prometheus", ds.Datasources[0].Type)
	require.Equal(t, "http://prometheus:9090", ds.Datasources[0].URL, "the compose service, on Prometheus' own port")

	var dash struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Type    string `yaml:"type"`
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, "grafana/provisioning/dashboards/ebb.yml", &dash)
	require.Equal(t, 1, dash.APIVersion)
	require.Len(t, dash.Providers, 1)
	require.Equal(t, "file", dash.Providers[0].Type)
	require.Equal(t, dashboardMount, dash.Providers[0].Options.Path)
}

type service struct {
	Image       string            `yaml:"image"`
	Command     []string          `yaml:"command"`
	Ports       []string          `yaml:"ports"`
	Expose      []string          `yaml:"expose"`
	Volumes     []string          `yaml:"volumes"`
	Environment map[string]string `yaml:"environment"`
}

// TestCompose: Prometheus and Grafana are in the stack with their files
// mounted from this directory, every published port is on loopback only,
// and the worker listens where Prometheus looks.
func TestCompose(t *testing.T) {
	t.Parallel()
	var c struct {
		Services map[string]service `yaml:"services"`
		Volumes  map[string]any     `yaml:"volumes"`
	}
	readYAML(t, "compose.yaml", &c)
	for _, name := range []string{"postgres", "redis", "worker", "prometheus", "grafana"} {
		require.Contains(t, c.Services, name)
	}
	for name, s := range c.Services {
		for _, p := range s.Ports {
			require.True(t, strings.HasPrefix(p, "127.0.0.1:"), "%s publishes %s beyond loopback", name, p)
		}
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, "./") {
				_, err := os.Stat(filepath.FromSlash(src))
				require.NoError(t, err, "%s mounts %s", name, src)
			} else {
				require.Contains(t, c.Volumes, src, "%s: named volume %s is declared", name, src)
			}
		}
	}
	require.Contains(t, c.Services["prometheus"].Ports, "127.0.0.1:9091:9090")
	// enqueuer ui listens on 127.0.0.1:8080 by default: Asynqmon takes
	// 8089 and the version make asynqmon installs, never a moving tag.
	for name, s := range c.Services {
		for _, p := range s.Ports {
			require.False(t, strings.HasPrefix(p, "127.0.0.1:8080:"), "%s publishes %s, enqueuer ui's default port", name, p)
		}
	}
	require.Contains(t, c.Services["asynqmon"].Ports, "127.0.0.1:8089:8080")
	makefile, err := os.ReadFile("../Makefile")
	require.NoError(t, err)
	require.Contains(t, string(makefile), "ASYNQMON_PORT ?= 8089")
	version := regexp.MustCompile(`asynqmon/cmd/asynqmon@(v[0-9.]+)`).FindStringSubmatch(string(makefile))
	require.Len(t, version, 2, "make asynqmon pins a version")
	// asynqmon's Docker Hub tags are the release version without the v.
	require.Equal(t, "hibiken/asynqmon:"+strings.TrimPrefix(version[1], "v"), c.Services["asynqmon"].Image)
	require.Contains(t, c.Services["prometheus"].Volumes, "./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro")
	require.Contains(t, c.Services["prometheus"].Volumes, "./prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro")
	require.Contains(t, c.Services["grafana"].Ports, "127.0.0.1:3000:3000")
	require.Contains(t, c.Services["grafana"].Volumes, "./grafana/provisioning:/etc/grafana/provisioning:ro")
	require.Contains(t, c.Services["grafana"].Volumes, "./grafana/ebb.json:"+dashboardMount+"/ebb.json:ro")
	require.Equal(t, "Viewer", c.Services["grafana"].Environment["GF_AUTH_ANONYMOUS_ORG_ROLE"])

	w := c.Services["worker"]
	i := slices.Index(w.Command, "-metrics-addr")
	require.GreaterOrEqual(t, i, 0)
	require.Equal(t, ":9090", w.Command[i+1])
	require.Contains(t, w.Expose, "9090")
}

// TestK8sWorker: the pods carry the scrape annotations for the port they
// serve metrics on, and readiness uses /readyz.
func TestK8sWorker(t *testing.T) {
	t.Parallel()
	var d struct {
		Spec struct {
			Template struct {
				Metadata struct {
					Annotations map[string]string `yaml:"annotations"`
				} `yaml:"metadata"`
				Spec struct {
					Containers []struct {
						Args  []string `yaml:"args"`
						Ports []struct {
							Name          string `yaml:"name"`
							ContainerPort int    `yaml:"containerPort"`
						} `yaml:"ports"`
						ReadinessProbe struct {
							HTTPGet struct {
								Path string `yaml:"path"`
							} `yaml:"httpGet"`
						} `yaml:"readinessProbe"`
					} `yaml:"containers"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	readYAML(t, "k8s/worker.yaml", &d)
	a := d.Spec.Template.Metadata.Annotations
	require.Equal(t, "true", a["prometheus.io/scrape"])
	require.Equal(t, "9090", a["prometheus.io/port"])
	require.Equal(t, "/metrics", a["prometheus.io/path"])
	require.Len(t, d.Spec.Template.Spec.Containers, 1)
	ctr := d.Spec.Template.Spec.Containers[0]
	require.Equal(t, metricsPort, ctr.Ports[0].ContainerPort)
	require.Contains(t, ctr.Args, ":9090")
	require.Equal(t, "/readyz", ctr.ReadinessProbe.HTTPGet.Path)
}

// TestAlerts: the shipped alerting rules are valid Prometheus rules
// (promtool check rules, where promtool is installed) and read only
// metrics and labels the worker exports.
func TestAlerts(t *testing.T) {
	t.Parallel()
	var f struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	readYAML(t, "prometheus/alerts.yml", &f)
	names := exported(t)
	alerts := map[string]bool{}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			alerts[r.Alert] = true
			require.Empty(t, checkExpr(r.Expr, names), "%s: %s", r.Alert, r.Expr)
			require.Contains(t, r.Expr, "by (backfill)", "%s aggregates per backfill", r.Alert)
		}
	}
	for _, want := range []string{"EbbBackfillPausedLong", "EbbGuardStale", "EbbRangesFailing", "EbbNoProgress"} {
		require.True(t, alerts[want], want)
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not installed (apt-get install prometheus): the rules' syntax was not checked")
	}
	out, err := exec.Command(promtool, "check", "rules", "prometheus/alerts.yml").CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "SUCCESS: 4 rules found")
}
