package jobspec

import (
	"encoding/json"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/ebbhq/ebb/internal/keyspace"
)

// KeyColumns is the job's key as the job file names it: one column
// (key: id) or several in the order of an index that covers them
// (key: [tenant_id, id]). keyspace.Open reads what they are from the
// catalog, and may append the primary key as a tie-breaker.
type KeyColumns []string

// String is the key as the job file writes it: "id", or "[tenant_id, id]".
func (k KeyColumns) String() string {
	if len(k) == 1 {
		return k[0]
	}
	return "[" + strings.Join(k, ", ") + "]"
}

// UnmarshalYAML accepts one column name or a list of them.
func (k *KeyColumns) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*k = KeyColumns{strings.TrimSpace(n.Value)}
		return nil
	case yaml.SequenceNode:
		var cols []string
		if err := n.Decode(&cols); err != nil {
			return fmt.Errorf("line %d: key: %w", n.Line, err)
		}
		*k = cols
		return nil
	}
	return fmt.Errorf("line %d: key: write one column (key: id) or a list (key: [tenant_id, id])", n.Line)
}

// MarshalJSON writes one column as a JSON string, as a job stored before
// composite keys has it, and several as an array.
func (k KeyColumns) MarshalJSON() ([]byte, error) {
	if len(k) == 1 {
		return json.Marshal(k[0])
	}
	return json.Marshal([]string(k))
}

// UnmarshalJSON reads a string or an array of strings.
func (k *KeyColumns) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*k = KeyColumns{one}
		if one == "" {
			*k = nil
		}
		return nil
	}
	var cols []string
	if err := json.Unmarshal(b, &cols); err != nil {
		return fmt.Errorf("key: want a column name or a list of them: %w", err)
	}
	*k = cols
	return nil
}

// KeyWindow is the job file's window: a keyspace.Window read from YAML
// with the line it was written on, so a bad one is a field error.
type KeyWindow struct{ keyspace.Window }

// UnmarshalYAML accepts what keyspace.ParseWindow accepts.
func (w *KeyWindow) UnmarshalYAML(n *yaml.Node) error {
	v, err := keyspace.ParseWindow(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	w.Window = v
	return nil
}
