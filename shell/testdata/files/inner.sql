SELECT 'from inner' AS msg;
SELECT * FROM
