"""Face templates: each an L2-normalised vector, the model that made it and the aligned crop."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from faceguard.errors import ImageError, LibraryError
from faceguard.library.people import PeopleStore
from faceguard.library.records import (
    EmbedFn,
    ReembedResult,
    Template,
    from_db_time,
    to_db_time,
    utc_now,
    vector_blob,
)
from faceguard.library.sqlite_file import READ_ONLY_MESSAGE
from faceguard.vision.image_io import decode_jpeg

log = logging.getLogger("faceguard.library.database")


class TemplateStore(PeopleStore):
    """Face templates: each an L2-normalised vector, the model that made it and the aligned crop."""

    # -- templates -----------------------------------------------------------------------------

    _TEMPLATE_SQL = ("SELECT id, person_id, model_id, dim, quality, source, created, "
                     "content_sha256 FROM templates")

    @staticmethod
    def _template(row: Sequence[Any]) -> Template:
        return Template(
            id=row[0],
            person_id=row[1],
            model_id=row[2],
            dim=row[3],
            quality=float(row[4]),
            source=row[5],
            created=from_db_time(row[6]),
            content_sha256=row[7],
        )

    def add_template(
        self,
        person_id: int,
        embedding: np.ndarray,
        model_id: str,
        quality: float,
        crop_jpeg: bytes,
        source: str | None = None,
        *,
        content_sha256: str | None = None,
        actor: str | None = None,
    ) -> Template:
        """Store a face template: the (L2-normalised) float32 embedding, the id of the model
        that made it, a quality score, the aligned crop as JPEG bytes and its source file name.
        """
        blob, dim = vector_blob(embedding)
        if not isinstance(model_id, str) or not model_id:
            raise ValueError("model_id must be a non-empty string")
        if not isinstance(crop_jpeg, bytes | bytearray) or bytes(crop_jpeg[:2]) != b"\xff\xd8":
            raise ValueError("crop_jpeg must be JPEG bytes (faceguard.vision.image_io.encode_jpeg)")
        with self._write("adding a face template"):
            self._person_or_raise(person_id)
            new_id = self._next_id("templates")  # sealed blobs are bound to their row id
            stored, vector_seal = self._seal("templates", "embedding", new_id, blob)
            crop, crop_seal = self._seal("templates", "crop_jpeg", new_id, bytes(crop_jpeg))
            template_id = self._insert(
                "INSERT INTO templates (id, person_id, embedding, dim, model_id, quality, "
                "crop_jpeg, source, created, content_sha256, embedding_seal, crop_seal) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    new_id,
                    person_id,
                    stored,
                    dim,
                    model_id,
                    float(quality),
                    crop,
                    source,
                    to_db_time(utc_now()),
                    content_sha256,
                    vector_seal,
                    crop_seal,
                ),
            )
            self._audit_in_tx(
                actor, "add_template", {"id": template_id, "person_id": person_id, "source": source}
            )
            row = self._conn.execute(
                self._TEMPLATE_SQL + " WHERE id = ?", (template_id,)
            ).fetchone()
            return self._template(row)

    def list_templates(
        self, person_id: int | None = None, model_id: str | None = None
    ) -> list[Template]:
        """Template metadata, optionally for one person and/or one model id, by id."""
        clauses: list[str] = []
        params: list[Any] = []
        if person_id is not None:
            clauses.append("person_id = ?")
            params.append(person_id)
        if model_id is not None:
            clauses.append("model_id = ?")
            params.append(model_id)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._read("listing templates"):
            rows = self._conn.execute(f"{self._TEMPLATE_SQL}{where} ORDER BY id", params)
            return [self._template(r) for r in rows.fetchall()]

    def _template_blob(self, template_id: int, column: str, seal: str, action: str) -> bytes:
        """One face blob of a template, opened (``column`` and its ``seal`` column)."""
        with self._read(action):
            row = self._conn.execute(
                f"SELECT {column}, {seal} FROM templates WHERE id = ?", (template_id,)
            ).fetchone()
            if row is None:
                raise LibraryError(f"There is no face template with id {template_id}.")
            return self._unseal("templates", column, template_id, row[0], row[1]) or b""

    def get_template_crop(self, template_id: int) -> bytes:
        """The stored JPEG crop of a template."""
        return self._template_blob(template_id, "crop_jpeg", "crop_seal", "reading a face crop")

    def get_template_vector(self, template_id: int) -> np.ndarray:
        """The stored (L2-normalised) float32 vector of a template."""
        blob = self._template_blob(template_id, "embedding", "embedding_seal",
                                   "reading a face template")
        return np.frombuffer(blob, dtype="<f4").astype(np.float32)

    def remove_template(self, template_id: int, *, actor: str | None = None) -> None:
        """Delete one template."""
        with self._write("removing a face template"):
            cursor = self._db.execute("DELETE FROM templates WHERE id = ?", (template_id,))
            if cursor.rowcount == 0:
                raise LibraryError(f"There is no face template with id {template_id}.")
            self._audit_in_tx(actor, "remove_template", {"id": template_id})

    def model_ids(self) -> dict[str, int]:
        """How many templates each model id has."""
        with self._read("counting templates"):
            rows = self._conn.execute(
                "SELECT model_id, count(*) FROM templates GROUP BY model_id ORDER BY model_id"
            ).fetchall()
        return {r[0]: r[1] for r in rows}

    def templates_matrix(
        self, model_id: str, *, include_inactive: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Vectors made by ``model_id`` for (active) people, ordered by person then template.

        Returns ``(person_ids int64 (N,), matrix float32 (N, D))``; with no templates the
        matrix has shape (0, 0).
        """
        active = "" if include_inactive else " AND p.active = 1"
        with self._read("loading face templates"):
            rows = self._conn.execute(
                "SELECT t.person_id, t.dim, t.embedding, t.id, t.embedding_seal FROM templates t "
                f"JOIN people p ON p.id = t.person_id WHERE t.model_id = ?{active} "
                "ORDER BY t.person_id, t.id",
                (model_id,),
            ).fetchall()
            if any(r[4] is not None for r in rows):  # encrypted: open each vector
                rows = [(r[0], r[1], self._unseal("templates", "embedding", r[3], r[2], r[4]))
                        for r in rows]
        if not rows:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
        dims = {r[1] for r in rows}
        if len(dims) != 1:
            raise LibraryError(
                f"Face templates for model {model_id!r} have different sizes {sorted(dims)}; "
                "the library is inconsistent."
            )
        person_ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        flat = np.frombuffer(b"".join(r[2] for r in rows), dtype="<f4")
        matrix = flat.reshape(len(rows), dims.pop()).astype(np.float32)
        return person_ids, matrix

    def templates_needing_reembed(self, model_id: str) -> list[Template]:
        """Templates (of anyone) that were made by a model other than ``model_id``."""
        with self._read("listing face templates"):
            rows = self._conn.execute(
                f"{self._TEMPLATE_SQL} WHERE model_id != ? ORDER BY id", (model_id,)
            ).fetchall()
        return [self._template(r) for r in rows]

    def reembed(
        self,
        model_id: str,
        embed_fn: EmbedFn,
        *,
        batch_size: int = 64,
        progress: Callable[[int, int], None] | None = None,
        actor: str | None = None,
        commit_each_batch: bool = False,
    ) -> ReembedResult:
        """Re-compute every template not made by ``model_id`` from its stored crop.

        ``embed_fn`` takes a list of RGB uint8 crops and returns an (n, D) array. Vectors are
        computed first; then all blobs and model ids are updated in one transaction, so an
        error (in ``embed_fn`` or the database) changes nothing. With ``commit_each_batch``
        each batch is its own transaction instead: a process killed part-way keeps the
        batches done (each template carries its model id), and calling this again resumes
        with the rest. Templates whose crop cannot be decoded, or whose vector comes back
        non-finite or zero, keep their old model id and are listed in ``failed``.
        ``progress(done, total)`` is called after each batch.
        """
        if not isinstance(model_id, str) or not model_id:
            raise ValueError("model_id must be a non-empty string")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if self._read_only:
            raise LibraryError(READ_ONLY_MESSAGE)
        with self._lock:
            todo = [t.id for t in self.templates_needing_reembed(model_id)]
            updates: list[tuple[bytes, int, str, int]] = []
            failed: list[int] = []
            updated = 0
            for start in range(0, len(todo), batch_size):
                batch_ids = todo[start : start + batch_size]
                crops, crop_ids = self._decode_batch(batch_ids, failed)
                if crops:
                    vectors = np.asarray(embed_fn(crops), dtype=np.float32)
                    if vectors.ndim != 2 or vectors.shape[0] != len(crops):
                        raise ValueError(
                            f"embed_fn returned shape {vectors.shape} for {len(crops)} crops"
                        )
                    for template_id, vec in zip(crop_ids, vectors, strict=True):
                        try:
                            blob, dim = vector_blob(vec)
                        except ValueError:
                            failed.append(template_id)
                            continue
                        updates.append((blob, dim, model_id, template_id))
                if commit_each_batch and updates:
                    updated += self._store_reembedded(updates, model_id, failed, actor)
                    updates = []
                if progress is not None:
                    progress(min(start + batch_size, len(todo)), len(todo))
            if updates:
                updated += self._store_reembedded(updates, model_id, failed, actor)
            if failed:
                log.warning("%d face templates could not be re-embedded: %s", len(failed), failed)
            return ReembedResult(updated=updated, failed=sorted(failed))

    def _store_reembedded(self, updates: list[tuple[bytes, int, str, int]], model_id: str,
                          failed: list[int], actor: str | None) -> int:
        """Write re-computed vectors and their model id in one audited transaction."""
        updated = 0
        with self._write("re-embedding face templates"):
            for blob, dim, new_model, template_id in updates:
                stored, seal = self._seal("templates", "embedding", template_id, blob)
                cursor = self._db.execute(
                    "UPDATE templates SET embedding = ?, embedding_seal = ?, dim = ?, "
                    "model_id = ? WHERE id = ? AND model_id != ?",
                    (stored, seal, dim, new_model, template_id, new_model),
                )
                updated += cursor.rowcount
            self._audit_in_tx(
                actor,
                "reembed",
                {"model_id": model_id, "updated": updated, "failed": sorted(failed)},
            )
        return updated

    def _decode_batch(
        self, template_ids: list[int], failed: list[int]
    ) -> tuple[list[np.ndarray], list[int]]:
        marks = ",".join("?" * len(template_ids))
        with self._read("reading face crops"):
            rows = self._conn.execute(
                f"SELECT id, crop_jpeg, crop_seal FROM templates WHERE id IN ({marks}) "
                "ORDER BY id",
                template_ids,
            ).fetchall()
            opened = [(r[0], self._unseal("templates", "crop_jpeg", r[0], r[1], r[2]) or b"")
                      for r in rows]
        crops: list[np.ndarray] = []
        ids: list[int] = []
        for template_id, jpeg in opened:
            try:
                crops.append(decode_jpeg(bytes(jpeg)))
            except ImageError:
                failed.append(template_id)
                continue
            ids.append(template_id)
        return crops, ids

