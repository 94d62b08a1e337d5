package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/amld/amld/api"
)

// jobFile is the YAML of `amlctl job submit -f`: the keys of api.RunSpec,
// with source (a local directory, relative to the YAML file) in place of
// source_id.
//
// command is either a list, run as is (argv), or a string, run with
// ["/bin/sh", "-c", string] so that pipes, && and $VARS work as in a shell.
type jobFile struct {
	Target                string            `json:"target"`
	Command               commandField      `json:"command"`
	Source                string            `json:"source"`
	Environment           api.Environment   `json:"environment"`
	Env                   map[string]string `json:"env"`
	Resources             *api.Resources    `json:"resources"`
	NodeCount             int               `json:"node_count"`
	ProcessCountPerNode   int               `json:"process_count_per_node"`
	Distribution          string            `json:"distribution"`
	Priority              int               `json:"priority"`
	MaxRetries            int               `json:"max_retries"`
	MaxPreemptions        *int              `json:"max_preemptions"`
	MaxRunDurationSeconds int               `json:"max_run_duration_seconds"`
	DisplayName           string            `json:"display_name"`
}

// commandField is a command given as a list (argv) or as a shell string.
type commandField []string

// UnmarshalJSON accepts a list of strings, or a string run through /bin/sh -c.
func (c *commandField) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		if strings.TrimSpace(s) == "" {
			*c = nil
			return nil
		}
		*c = []string{"/bin/sh", "-c", s}
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return errors.New("command: want a list of strings, or a string to run with /bin/sh -c")
	}
	*c = list
	return nil
}

// runSpec converts the file to a RunSpec; the source directory is returned
// apart, resolved against dir (the YAML file's directory).
func (f *jobFile) runSpec(dir string) (spec api.RunSpec, source string) {
	spec = api.RunSpec{
		Target:                f.Target,
		Command:               []string(f.Command),
		Environment:           f.Environment,
		Env:                   f.Env,
		Resources:             f.Resources,
		NodeCount:             f.NodeCount,
		ProcessCountPerNode:   f.ProcessCountPerNode,
		Distribution:          f.Distribution,
		Priority:              f.Priority,
		MaxRetries:            f.MaxRetries,
		MaxPreemptions:        f.MaxPreemptions,
		MaxRunDurationSeconds: f.MaxRunDurationSeconds,
		DisplayName:           f.DisplayName,
	}
	source = f.Source
	if source != "" && !filepath.IsAbs(source) {
		source = filepath.Join(dir, source)
	}
	return spec, source
}

// loadJobFile reads a job YAML file. It returns the spec and the source
// directory (resolved against the file's directory; empty for none).
func loadJobFile(path string) (api.RunSpec, string, error) {
	var f jobFile
	if err := loadYAML(path, &f); err != nil {
		return api.RunSpec{}, "", err
	}
	spec, source := f.runSpec(filepath.Dir(path))
	return spec, source, nil
}

// loadTargetFile reads a compute target YAML file: the keys of
// api.TargetSpec. A missing type means cluster.
func loadTargetFile(path string) (api.TargetSpec, error) {
	var spec api.TargetSpec
	if err := loadYAML(path, &spec); err != nil {
		return api.TargetSpec{}, err
	}
	if spec.Type == "" {
		spec.Type = api.KindCluster
	}
	return spec, nil
}

// loadYAML strictly decodes the YAML file at path into v: unknown and
// duplicate keys are errors, and errors name the file and the key.
func loadYAML(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := decodeYAML(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// unknownField finds the key in encoding/json's unknown field error.
var unknownField = regexp.MustCompile(`unknown field "([^"]*)"`)

// decodeYAML strictly decodes YAML b into v, with errors in the file's words.
func decodeYAML(b []byte, v any) error {
	if strings.TrimSpace(string(b)) == "" {
		return errors.New("the file is empty")
	}
	err := yaml.UnmarshalStrict(b, v)
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			return fmt.Errorf("want a mapping of keys, got %s", te.Value)
		}
		return fmt.Errorf("%s: want %s, got %s", field, typeWords(te.Type.Kind().String()), te.Value)
	}
	if m := unknownField.FindStringSubmatch(err.Error()); m != nil {
		return fmt.Errorf("unknown key %q", m[1])
	}
	// Errors of our own decoders (commandField) and of the YAML parser.
	msg := err.Error()
	for _, p := range []string{"error converting YAML to JSON: ", "error unmarshaling JSON: ", "while decoding JSON: ", "json: "} {
		msg = strings.ReplaceAll(msg, p, "")
	}
	msg = strings.ReplaceAll(msg, ":\n  ", ": ")
	return errors.New(strings.ReplaceAll(msg, "\n  ", "; "))
}

// typeWords names a Go kind the way a YAML author thinks of it.
func typeWords(kind string) string {
	switch {
	case strings.HasPrefix(kind, "int"), strings.HasPrefix(kind, "uint"):
		return "a whole number"
	case strings.HasPrefix(kind, "float"):
		return "a number"
	case kind == "string":
		return "a string"
	case kind == "bool":
		return "true or false"
	case kind == "map", kind == "struct", kind == "ptr":
		return "a mapping"
	case kind == "slice":
		return "a list"
	}
	return kind
}
