SELECT 'from nested' AS msg;
.read testdata/files/inner.sql
