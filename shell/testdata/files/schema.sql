-- A schema with a trigger, read by .read.
CREATE TABLE books (
  id    INTEGER PRIMARY KEY,
  title TEXT NOT NULL,   -- the title; with a semicolon in the comment
  pages INTEGER
);
CREATE TABLE audit (what TEXT);
CREATE TRIGGER books_audit AFTER INSERT ON books
BEGIN
  INSERT INTO audit VALUES ('added ' || NEW.title);
END;

.mode table
INSERT INTO books (title, pages) VALUES
  ('Dune', 412),
  ('Emma; a novel', 474);
