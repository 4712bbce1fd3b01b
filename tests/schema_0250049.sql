-- The library schema as photo_sorter commit 0250049 created it (before Alembic), frozen for the
-- upgrade test (tests/test_store_migrations.py). Never edit: it is what old libraries contain.
CREATE TABLE photos (
	id INTEGER NOT NULL,
	path TEXT NOT NULL,
	folder TEXT NOT NULL,
	size INTEGER,
	mtime_ns INTEGER,
	content_hash VARCHAR(64),
	status VARCHAR(16) NOT NULL,
	error TEXT,
	width INTEGER,
	height INTEGER,
	captured_at DATETIME,
	capture_source VARCHAR(16),
	camera TEXT,
	burst_id TEXT,
	n_faces INTEGER NOT NULL,
	scanned_at DATETIME,
	PRIMARY KEY (id),
	UNIQUE (path)
);
CREATE INDEX ix_photos_folder ON photos (folder);
CREATE INDEX ix_photos_status ON photos (status);
CREATE INDEX ix_photos_captured_at ON photos (captured_at);
CREATE INDEX ix_photos_content_hash ON photos (content_hash);
CREATE TABLE models (
	id INTEGER NOT NULL,
	name TEXT NOT NULL,
	sha256 VARCHAR(64) NOT NULL,
	path TEXT NOT NULL,
	attributes JSON NOT NULL,
	thresholds JSON NOT NULL,
	card JSON NOT NULL,
	active BOOLEAN NOT NULL,
	added_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL,
	PRIMARY KEY (id),
	UNIQUE (sha256)
);
CREATE TABLE scan_runs (
	id INTEGER NOT NULL,
	started_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL,
	finished_at DATETIME,
	roots JSON NOT NULL,
	status VARCHAR(16) NOT NULL,
	summary JSON,
	PRIMARY KEY (id)
);
CREATE TABLE faces (
	id INTEGER NOT NULL,
	photo_id INTEGER NOT NULL,
	"index" INTEGER NOT NULL,
	x FLOAT NOT NULL,
	y FLOAT NOT NULL,
	w FLOAT NOT NULL,
	h FLOAT NOT NULL,
	confidence FLOAT NOT NULL,
	landmarks JSON NOT NULL,
	crop BLOB,
	PRIMARY KEY (id),
	UNIQUE (photo_id, "index"),
	FOREIGN KEY(photo_id) REFERENCES photos (id) ON DELETE CASCADE
);
CREATE INDEX ix_faces_photo_id ON faces (photo_id);
CREATE TABLE cluster_runs (
	id INTEGER NOT NULL,
	created_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL,
	model_id INTEGER,
	attributes JSON NOT NULL,
	k INTEGER NOT NULL,
	seed INTEGER NOT NULL,
	silhouette FLOAT,
	params JSON NOT NULL,
	PRIMARY KEY (id),
	FOREIGN KEY(model_id) REFERENCES models (id) ON DELETE SET NULL
);
CREATE TABLE best_choices (
	group_key TEXT NOT NULL,
	photo_id INTEGER NOT NULL,
	chosen_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL,
	PRIMARY KEY (group_key),
	FOREIGN KEY(photo_id) REFERENCES photos (id) ON DELETE CASCADE
);
CREATE TABLE photo_hashes (
	photo_id INTEGER NOT NULL,
	size INTEGER,
	mtime_ns INTEGER,
	dhash VARCHAR(16),
	PRIMARY KEY (photo_id),
	FOREIGN KEY(photo_id) REFERENCES photos (id) ON DELETE CASCADE
);
CREATE TABLE predictions (
	id INTEGER NOT NULL,
	face_id INTEGER NOT NULL,
	model_id INTEGER NOT NULL,
	"5_o_Clock_Shadow" FLOAT,
	"Arched_Eyebrows" FLOAT,
	"Attractive" FLOAT,
	"Bags_Under_Eyes" FLOAT,
	"Bald" FLOAT,
	"Bangs" FLOAT,
	"Big_Lips" FLOAT,
	"Big_Nose" FLOAT,
	"Black_Hair" FLOAT,
	"Blond_Hair" FLOAT,
	"Blurry" FLOAT,
	"Brown_Hair" FLOAT,
	"Bushy_Eyebrows" FLOAT,
	"Chubby" FLOAT,
	"Double_Chin" FLOAT,
	"Eyeglasses" FLOAT,
	"Goatee" FLOAT,
	"Gray_Hair" FLOAT,
	"Heavy_Makeup" FLOAT,
	"High_Cheekbones" FLOAT,
	"Male" FLOAT,
	"Mouth_Slightly_Open" FLOAT,
	"Mustache" FLOAT,
	"Narrow_Eyes" FLOAT,
	"No_Beard" FLOAT,
	"Oval_Face" FLOAT,
	"Pale_Skin" FLOAT,
	"Pointy_Nose" FLOAT,
	"Receding_Hairline" FLOAT,
	"Rosy_Cheeks" FLOAT,
	"Sideburns" FLOAT,
	"Smiling" FLOAT,
	"Straight_Hair" FLOAT,
	"Wavy_Hair" FLOAT,
	"Wearing_Earrings" FLOAT,
	"Wearing_Hat" FLOAT,
	"Wearing_Lipstick" FLOAT,
	"Wearing_Necklace" FLOAT,
	"Wearing_Necktie" FLOAT,
	"Young" FLOAT,
	PRIMARY KEY (id),
	UNIQUE (face_id, model_id),
	FOREIGN KEY(face_id) REFERENCES faces (id) ON DELETE CASCADE,
	FOREIGN KEY(model_id) REFERENCES models (id) ON DELETE CASCADE
);
CREATE INDEX "ix_predictions_model_Big_Nose" ON predictions (model_id, "Big_Nose");
CREATE INDEX "ix_predictions_model_Male" ON predictions (model_id, "Male");
CREATE INDEX "ix_predictions_model_Wavy_Hair" ON predictions (model_id, "Wavy_Hair");
CREATE INDEX "ix_predictions_model_Black_Hair" ON predictions (model_id, "Black_Hair");
CREATE INDEX "ix_predictions_model_Blurry" ON predictions (model_id, "Blurry");
CREATE INDEX "ix_predictions_model_Pointy_Nose" ON predictions (model_id, "Pointy_Nose");
CREATE INDEX "ix_predictions_model_Brown_Hair" ON predictions (model_id, "Brown_Hair");
CREATE INDEX "ix_predictions_model_Bushy_Eyebrows" ON predictions (model_id, "Bushy_Eyebrows");
CREATE INDEX "ix_predictions_model_Mouth_Slightly_Open" ON predictions (model_id, "Mouth_Slightly_Open");
CREATE INDEX "ix_predictions_model_Chubby" ON predictions (model_id, "Chubby");
CREATE INDEX "ix_predictions_model_Wearing_Earrings" ON predictions (model_id, "Wearing_Earrings");
CREATE INDEX "ix_predictions_model_Double_Chin" ON predictions (model_id, "Double_Chin");
CREATE INDEX "ix_predictions_model_Eyeglasses" ON predictions (model_id, "Eyeglasses");
CREATE INDEX "ix_predictions_model_Receding_Hairline" ON predictions (model_id, "Receding_Hairline");
CREATE INDEX "ix_predictions_model_Mustache" ON predictions (model_id, "Mustache");
CREATE INDEX "ix_predictions_model_Wearing_Hat" ON predictions (model_id, "Wearing_Hat");
CREATE INDEX "ix_predictions_model_Goatee" ON predictions (model_id, "Goatee");
CREATE INDEX "ix_predictions_model_Pale_Skin" ON predictions (model_id, "Pale_Skin");
CREATE INDEX "ix_predictions_model_Rosy_Cheeks" ON predictions (model_id, "Rosy_Cheeks");
CREATE INDEX "ix_predictions_model_Narrow_Eyes" ON predictions (model_id, "Narrow_Eyes");
CREATE INDEX "ix_predictions_model_Wearing_Lipstick" ON predictions (model_id, "Wearing_Lipstick");
CREATE INDEX "ix_predictions_model_Gray_Hair" ON predictions (model_id, "Gray_Hair");
CREATE INDEX "ix_predictions_model_Sideburns" ON predictions (model_id, "Sideburns");
CREATE INDEX "ix_predictions_model_No_Beard" ON predictions (model_id, "No_Beard");
CREATE INDEX "ix_predictions_model_Young" ON predictions (model_id, "Young");
CREATE INDEX "ix_predictions_model_Wearing_Necklace" ON predictions (model_id, "Wearing_Necklace");
CREATE INDEX ix_predictions_model_face ON predictions (model_id, face_id);
CREATE INDEX "ix_predictions_model_Heavy_Makeup" ON predictions (model_id, "Heavy_Makeup");
CREATE INDEX "ix_predictions_model_Smiling" ON predictions (model_id, "Smiling");
CREATE INDEX "ix_predictions_model_5_o_Clock_Shadow" ON predictions (model_id, "5_o_Clock_Shadow");
CREATE INDEX "ix_predictions_model_Arched_Eyebrows" ON predictions (model_id, "Arched_Eyebrows");
CREATE INDEX "ix_predictions_model_Oval_Face" ON predictions (model_id, "Oval_Face");
CREATE INDEX "ix_predictions_model_Attractive" ON predictions (model_id, "Attractive");
CREATE INDEX "ix_predictions_model_Wearing_Necktie" ON predictions (model_id, "Wearing_Necktie");
CREATE INDEX "ix_predictions_model_Bags_Under_Eyes" ON predictions (model_id, "Bags_Under_Eyes");
CREATE INDEX "ix_predictions_model_High_Cheekbones" ON predictions (model_id, "High_Cheekbones");
CREATE INDEX "ix_predictions_model_Bald" ON predictions (model_id, "Bald");
CREATE INDEX "ix_predictions_model_Straight_Hair" ON predictions (model_id, "Straight_Hair");
CREATE INDEX "ix_predictions_model_Blond_Hair" ON predictions (model_id, "Blond_Hair");
CREATE INDEX "ix_predictions_model_Bangs" ON predictions (model_id, "Bangs");
CREATE INDEX "ix_predictions_model_Big_Lips" ON predictions (model_id, "Big_Lips");
CREATE TABLE clusters (
	id INTEGER NOT NULL,
	run_id INTEGER NOT NULL,
	"index" INTEGER NOT NULL,
	name TEXT NOT NULL,
	size INTEGER NOT NULL,
	centroid JSON NOT NULL,
	mean_probabilities JSON NOT NULL,
	sheet_path TEXT,
	PRIMARY KEY (id),
	FOREIGN KEY(run_id) REFERENCES cluster_runs (id) ON DELETE CASCADE
);
CREATE INDEX ix_clusters_run_id ON clusters (run_id);
CREATE TABLE cluster_members (
	cluster_id INTEGER NOT NULL,
	face_id INTEGER NOT NULL,
	distance FLOAT NOT NULL,
	PRIMARY KEY (cluster_id, face_id),
	FOREIGN KEY(cluster_id) REFERENCES clusters (id) ON DELETE CASCADE,
	FOREIGN KEY(face_id) REFERENCES faces (id) ON DELETE CASCADE
);
