package api

// BackupOptions select what Backup writes.
type BackupOptions struct {
	// SQL asks for a text dump instead of the database file.
	SQL bool
	// Tables limits an SQL dump to these tables (and their indexes and
	// triggers); empty means every table.
	Tables []string
}
