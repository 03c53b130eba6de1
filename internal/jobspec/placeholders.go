package jobspec

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// CheckPlaceholders checks that a custom sql: statement binds a batch's
// bounds for a key of width columns: $1..$width are the lower key's
// columns and $width+1..$2*width the upper key's, every one used and none
// above. A statement that leaves one out would write rows outside the
// batch (or all of them), so it is refused rather than run.
func CheckPlaceholders(sql string, width int) error {
	used := placeholders(sql)
	var missing []string
	for i := 1; i <= 2*width; i++ {
		if !used[i] {
			missing = append(missing, "$"+strconv.Itoa(i))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("must use %s, the inclusive lower and upper key of a batch (%s); it leaves out %s",
			placeholderList(width), boundExample(width), strings.Join(missing, ", "))
	}
	for i := range used {
		if i > 2*width {
			return fmt.Errorf("uses $%d, above $%d: a key of %d column(s) binds $1..$%d (%s)", i, 2*width, width, 2*width, boundExample(width))
		}
	}
	return nil
}

// checkPlaceholdersAtLeast is what the job file alone can check: the key
// may grow a tie-breaker column once the catalog is read (preflight then
// checks the exact width), so $1..$2w must be used and any placeholders
// past them must come in pairs of lower and upper columns.
func checkPlaceholdersAtLeast(sql string, width int) error {
	if err := CheckPlaceholders(sql, width); err == nil {
		return nil
	}
	used := placeholders(sql)
	top := 0
	for i := range used {
		top = max(top, i)
	}
	if top > 2*width && top%2 == 0 && CheckPlaceholders(sql, top/2) == nil {
		return nil // bounds for a key with a tie-breaker; preflight checks the width
	}
	return CheckPlaceholders(sql, width)
}

// placeholders is the set of $n the statement names.
func placeholders(sql string) map[int]bool {
	used := map[int]bool{}
	for _, m := range placeholderRE.FindAllStringSubmatch(sql, -1) {
		if n, err := strconv.Atoi(m[1]); err == nil {
			used[n] = true
		}
	}
	return used
}

var placeholderRE = regexp.MustCompile(`\$([0-9]+)`)

func placeholderList(width int) string {
	if width == 1 {
		return "both $1 and $2"
	}
	return fmt.Sprintf("all of $1..$%d", 2*width)
}

func boundExample(width int) string {
	if width == 1 {
		return "e.g. ... WHERE id BETWEEN $1 AND $2 AND (status IS NULL)"
	}
	lo, hi := make([]string, width), make([]string, width)
	for i := range lo {
		lo[i], hi[i] = "$"+strconv.Itoa(i+1), "$"+strconv.Itoa(width+i+1)
	}
	return fmt.Sprintf("e.g. ... WHERE (a, b) >= (%s) AND (a, b) <= (%s), one placeholder per key column", strings.Join(lo, ", "), strings.Join(hi, ", "))
}
