package store

import (
	"context"
	"strings"
)

// DashboardPlans returns the EXPLAIN QUERY PLAN details of each dashboard
// query, by chart, one line per plan step.
func (db *DB) DashboardPlans(ctx context.Context) (map[string]string, error) {
	out := map[string]string{}
	for name, q := range map[string]struct {
		sql  string
		args []any
	}{
		"buckets": {dashBucketsSQL, []any{0, 1, 600000}},
		"reasons": {dashReasonsSQL, []any{0, 1}},
		"sources": {dashSourcesSQL, []any{0, 1}},
		"places":  {dashPlacesSQL, []any{0, 1, 10}},
	} {
		rows, err := db.r.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q.sql, q.args...)
		if err != nil {
			return nil, err
		}
		var lines []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				rows.Close()
				return nil, err
			}
			lines = append(lines, detail)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		out[name] = strings.Join(lines, "\n")
	}
	return out, nil
}
