INSERT INTO books (title) VALUES ('first');

INSERT INTO books (title)
  VALUES (NULL);
INSERT INTO books (title) VALUES ('never');
