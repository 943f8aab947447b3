CREATE TABLE languages (id serial PRIMARY KEY, code text UNIQUE NOT NULL, name text NOT NULL);
CREATE TABLE words (id serial PRIMARY KEY, language_id integer NOT NULL REFERENCES languages(id), text text NOT NULL);
INSERT INTO languages (code, name) VALUES ('de', 'German'), ('es', 'Spanish'), ('fr', 'French')
  ON CONFLICT DO NOTHING;
INSERT INTO words (language_id, text) VALUES (1, 'Haus'), (1, 'Baum'), (2, 'casa'), (3, 'maison');
