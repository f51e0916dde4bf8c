"""The report types residents can send (Open311 `services`), with their metadata attributes.

Codes are stable identifiers; names and descriptions are what a resident reads, in French, or in
English when the request asks for it (collector.i18n).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

#: when the report types or their attributes last changed (the discovery document's changeset):
#: move it with any change below, so that clients refresh what they cached
CHANGESET = "2026-12-04T17:00:00Z"
LAMP_OUT = "lamp-out"
LAMP_ID = "lamp_id"
SYMPTOM = "symptom"
#: A lamp as the collector knows it: the cabinet gateway's name and the lamp controller's device name.
LAMP_ID_RE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]{0,63})/([^/\s]{1,128})$")


@dataclass(frozen=True, slots=True)
class Attribute:
    code: str
    description: str
    datatype_description: str
    required: bool = False
    datatype: str = "string"
    order: int = 1
    #: (key, name) of each choice of a singlevaluelist: the value sent must be one of the keys
    values: tuple[tuple[str, str], ...] = ()
    #: in English: the description, the datatype's, and each choice's name (in the order of `values`)
    english: tuple[str, str, tuple[str, ...]] = ("", "", ())

    def as_json(self, lang: str = "fr") -> dict[str, Any]:
        en = lang == "en"
        names = self.english[2] if en else tuple(n for _, n in self.values)
        return {"variable": True, "code": self.code, "datatype": self.datatype, "required": self.required,
                "datatype_description": self.english[1] if en else self.datatype_description, "order": self.order,
                "description": self.english[0] if en else self.description,
                "values": [{"key": k, "name": n} for (k, _), n in zip(self.values, names, strict=True)]}


@dataclass(frozen=True, slots=True)
class Service:
    code: str
    name: str
    description: str
    group: str
    agency: str
    keywords: tuple[str, ...] = ()
    attributes: tuple[Attribute, ...] = field(default_factory=tuple)
    #: about a street lamp: such a report joins the open request of its lamp; any other kind of
    #: report is a request of its own, even next to a faulty lamp (its service code must not be lost)
    lamp: bool = False
    #: in English: the name, the description and the group
    english: tuple[str, str, str] = ("", "", "")

    def name_in(self, lang: str) -> str:
        return self.english[0] if lang == "en" else self.name

    def as_json(self, lang: str = "fr") -> dict[str, Any]:
        en = lang == "en"
        return {"service_code": self.code, "service_name": self.name_in(lang),
                "description": self.english[1] if en else self.description,
                "metadata": bool(self.attributes), "type": "realtime", "keywords": ",".join(self.keywords),
                "group": self.english[2] if en else self.group}

    def definition(self, lang: str = "fr") -> dict[str, Any]:
        return {"service_code": self.code, "attributes": [a.as_json(lang) for a in self.attributes]}


_ROADS = "Dijon Métropole, voirie"
_CLEAN = "Dijon Métropole, propreté"

SERVICES: dict[str, Service] = {s.code: s for s in (
    Service(LAMP_OUT, "Lampadaire éteint ou défectueux",
            "Un lampadaire ne s'allume pas, clignote ou reste allumé le jour.", "Éclairage public",
            "Dijon Métropole, éclairage public", ("lampadaire", "éclairage", "candélabre"),
            (Attribute(LAMP_ID, "Numéro du lampadaire (plaque sur le mât), s'il est lisible",
                       "armoire/lampadaire, par exemple gw-dijon-0001/lamp-3",
                       english=("The lamp's number (plate on the column), if readable",
                                "cabinet/lamp, e.g. gw-dijon-0001/lamp-3", ())),
             # what the crew brings differs: a lamp, a controller, or a lantern or column to make safe
             Attribute(SYMPTOM, "Ce que vous constatez", "un choix de la liste", datatype="singlevaluelist",
                       order=2, values=(("off", "Éteint"), ("flashing", "Clignote"),
                                        ("day_on", "Allumé en plein jour"),
                                        ("damaged", "Lanterne ou mât endommagé")),
                       english=("What you see", "one choice of the list",
                                ("Off", "Flashing", "On in broad daylight", "Lantern or column damaged")))),
            lamp=True, english=("Street lamp out or faulty", "A street lamp does not light, flashes or stays on "
                                "by day.", "Street lighting")),
    Service("pothole", "Nid-de-poule", "Trou ou affaissement de la chaussée ou du trottoir.", "Voirie", _ROADS,
            ("chaussée", "trou", "trottoir"),
            english=("Pothole", "A hole or a dip in the road or the pavement.", "Roads")),
    Service("fallen-branch", "Branche tombée", "Branche ou arbre tombé sur la voie publique.", "Espaces verts",
            "Dijon Métropole, espaces verts", ("arbre", "branche"),
            english=("Fallen branch", "A branch or a tree fallen on the public way.", "Parks and trees")),
    Service("manhole-cover", "Plaque d'égout déplacée", "Tampon de regard manquant, cassé ou déplacé.", "Voirie",
            _ROADS, ("égout", "regard", "tampon"),
            english=("Manhole cover out of place", "A manhole cover missing, broken or moved.", "Roads")),
    Service("bus-shelter", "Abribus endommagé", "Vitre cassée, banc ou affichage endommagé.", "Mobilier urbain",
            "Dijon Métropole, mobilier urbain", ("abribus", "arrêt"),
            english=("Damaged bus shelter", "A broken pane, bench or display.", "Street furniture")),
    Service("graffiti", "Tag", "Tag ou graffiti sur un bien public.", "Propreté", _CLEAN, ("tag", "graffiti"),
            english=("Graffiti", "A tag or graffiti on public property.", "Cleanliness")),
    Service("bulky-waste", "Dépôt d'encombrants", "Encombrants abandonnés sur la voie publique.", "Propreté", _CLEAN,
            ("encombrants", "dépôt sauvage"),
            english=("Dumped bulky waste", "Bulky waste left on the public way.", "Cleanliness")),
)}
