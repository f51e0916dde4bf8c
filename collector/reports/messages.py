"""What residents read from the reports service, in French and in English (collector.i18n).

Open311 error descriptions ("open311.*"), the notes and notices of a request ("report.*") and
the follow page ("page.*"). Values are formatted by the caller (a quoted input is given with
its quotes), so that a template stays a sentence in each language.
"""

from __future__ import annotations

from collector.i18n import add_messages

MESSAGES = {
    # -- Open311 errors ---------------------------------------------------------------------------------
    "open311.not_iso": {"fr": "{name} : {raw} n'est pas une date-heure ISO 8601",
                        "en": "{name}: {raw} is not an ISO 8601 date-time"},
    "open311.no_zone": {"fr": "{name} : {raw} n'a pas de fuseau horaire (ajoutez Z ou un décalage comme +01:00)",
                        "en": "{name}: {raw} has no time zone (add Z or an offset such as +01:00)"},
    "open311.end_before_start": {"fr": "end_date est avant start_date", "en": "end_date is before start_date"},
    "open311.window_too_long": {"fr": "de start_date à end_date il y a plus de 90 jours",
                                "en": "start_date to end_date spans more than 90 days"},
    "open311.no_jurisdiction": {"fr": "jurisdiction_id manque : le code INSEE de la commune",
                                "en": "jurisdiction_id was not provided: the commune's INSEE code"},
    "open311.unknown_jurisdiction": {"fr": "jurisdiction_id {raw} n'est pas une commune de {territory}",
                                     "en": "jurisdiction_id {raw} is no commune of {territory}"},
    "open311.too_long": {"fr": "{name} dépasse {limit} caractères", "en": "{name} is longer than {limit} characters"},
    "open311.control_chars": {"fr": "{name} contient des caractères de contrôle (ou U+FFFE, U+FFFF)",
                              "en": "{name} holds control characters (or U+FFFE, U+FFFF)"},
    "open311.not_number": {"fr": "{name} {raw} n'est pas un nombre", "en": "{name} {raw} is not a number"},
    "open311.out_of_range": {"fr": "{name} {raw} est hors de l'intervalle [-{limit}, {limit}]",
                             "en": "{name} {raw} is out of range [-{limit}, {limit}]"},
    "open311.no_service_code": {"fr": "service_code manque", "en": "service_code was not provided"},
    "open311.unknown_service": {"fr": "service_code {code} est introuvable (GET services.json les liste)",
                                "en": "service_code {code} was not found (GET services.json lists them)"},
    "open311.unknown_field": {"fr": "{key} n'est pas un champ d'une demande",
                              "en": "{key} is not a field of a service request"},
    "open311.unknown_attribute": {"fr": "attribute[{code}] n'est pas un attribut de {service}",
                                  "en": "attribute[{code}] is not an attribute of {service}"},
    "open311.attribute_required": {"fr": "attribute[{code}] est obligatoire pour {service}",
                                   "en": "attribute[{code}] is required for {service}"},
    "open311.lamp_id_format": {"fr": "attribute[{code}] {raw} : attendu armoire/lampadaire, "
                                     "par exemple gw-dijon-0001/lamp-3",
                               "en": "attribute[{code}] {raw}: expected cabinet/lamp, e.g. gw-dijon-0001/lamp-3"},
    "open311.bad_email": {"fr": "email n'est pas une adresse électronique", "en": "email is not an e-mail address"},
    "open311.bad_phone": {"fr": "phone n'est pas un numéro de téléphone", "en": "phone is not a phone number"},
    "open311.bad_media_url": {"fr": "media_url doit être une URL http(s)", "en": "media_url must be an http(s) URL"},
    "open311.lat_long_together": {"fr": "lat et long vont ensemble", "en": "lat and long go together"},
    "open311.no_location": {"fr": "un lieu est obligatoire : lat et long, address_string ou address_id",
                            "en": "a location is required: lat and long, address_string or address_id"},
    "open311.outside": {"fr": "lat/long ({lat}, {lon}) est hors de {territory}",
                        "en": "lat/long ({lat}, {lon}) is outside {territory}"},
    "open311.attribute_choice": {"fr": "attribute[{code}] {raw} : l'un de {keys}",
                                 "en": "attribute[{code}] {raw}: one of {keys}"},
    "open311.attribute_text": {"fr": "attribute[{code}] : {limit} caractères au plus, sans caractère de contrôle",
                               "en": "attribute[{code}]: at most {limit} characters, no control characters"},
    "open311.content_type": {"fr": "envoyez les champs en application/x-www-form-urlencoded (ou un objet JSON), "
                                   "pas en {ctype}",
                             "en": "send the fields as application/x-www-form-urlencoded (or a JSON object), "
                                   "not {ctype}"},
    "open311.body_too_large": {"fr": "le corps dépasse {limit} octets : un signalement tient en quelques champs",
                               "en": "the body exceeds {limit} bytes: a report is a few fields"},
    "open311.bad_json": {"fr": "le corps n'est pas du JSON valide : {error}", "en": "the body is not valid JSON: {error}"},
    "open311.json_not_object": {"fr": "le corps JSON doit être un objet de champs",
                                "en": "the JSON body must be an object of fields"},
    "open311.not_utf8": {"fr": "le formulaire n'est pas en UTF-8", "en": "the form is not UTF-8"},
    "open311.too_many_fields": {"fr": "un signalement a {limit} champs au plus",
                                "en": "a report has at most {limit} fields"},
    "open311.not_text": {"fr": "{key} : une valeur texte est attendue", "en": "{key}: expected a text value"},
    "open311.twice": {"fr": "{key} est donné deux fois", "en": "{key} is given twice"},
    "open311.no_cabinet": {"fr": "attribute[{code}] : aucune armoire d'éclairage nommée {gateway}",
                           "en": "attribute[{code}]: no lamp cabinet named {gateway}"},
    "open311.cabinet_elsewhere": {"fr": "attribute[{code}] : l'armoire {gateway} n'est pas à {commune}",
                                  "en": "attribute[{code}]: cabinet {gateway} is not in {commune}"},
    "open311.no_such_lamp": {"fr": "attribute[{code}] : l'armoire {gateway} n'a pas de lampadaire {device}",
                             "en": "attribute[{code}]: cabinet {gateway} has no lamp {device}"},
    "open311.rate_limited": {"fr": "trop de signalements depuis cette adresse ou cet e-mail : "
                                   "réessayez dans {wait} s",
                             "en": "too many reports from this address or this e-mail: try again in {wait} s"},
    "open311.bad_request_id": {"fr": "service_request_id {raw} n'est pas un numéro de demande",
                               "en": "service_request_id {raw} is not a request id"},
    "open311.unknown_service_short": {"fr": "service_code {code} est introuvable",
                                      "en": "service_code {code} was not found"},
    "open311.bad_status": {"fr": "status {raw} : open ou closed", "en": "status {raw}: open or closed"},
    "open311.request_not_found": {"fr": "la demande service_request_id {id} est introuvable",
                                  "en": "service_request_id {id} was not found"},
    "open311.request_not_in": {"fr": "la demande service_request_id {id} est introuvable dans jurisdiction_id {raw}",
                               "en": "service_request_id {id} was not found in jurisdiction_id {raw}"},
    "open311.token_not_found": {"fr": "token introuvable", "en": "token was not found"},
    "open311.nul": {"fr": "le paramètre {name} ({where}) contient un caractère NUL",
                    "en": "{where} parameter {name} holds a NUL"},
    "open311.internal": {"fr": "le collecteur a échoué sur cette demande ; l'erreur est journalisée",
                         "en": "the collector failed on this request; it is logged"},
    "open311.token_not_in": {"fr": "token introuvable dans jurisdiction_id {raw}",
                             "en": "token was not found in jurisdiction_id {raw}"},
    "open311.follow_token_required": {
        "fr": "le jeton de suivi donné à l'envoi du signalement est requis (?token=...)",
        "en": "the follow token given when the report was sent is required (?token=...)"},
    "open311.follow_token_wrong": {"fr": "ce jeton de suivi n'est pas celui de cette demande",
                                   "en": "this follow token does not belong to this request"},
    "open311.http_not_found": {"fr": "{method} {path} : adresse inconnue", "en": "{method} {path}: not found"},
    "open311.http_method": {"fr": "{method} {path} : méthode non permise", "en": "{method} {path}: method not allowed"},
    "open311.http_other": {"fr": "{method} {path} : erreur {status}", "en": "{method} {path}: error {status}"},
    # -- what a request says publicly -------------------------------------------------------------------
    "report.note.received": {"fr": "Signalement reçu.", "en": "Report received."},
    "report.note.dispatched": {"fr": "Intervention programmée.", "en": "Repair scheduled."},
    "report.note.in_progress": {"fr": "Intervention en cours.", "en": "Repair under way."},
    "report.note.resolved": {"fr": "Résolu.", "en": "Resolved."},
    "report.note.lamp_restored": {"fr": "Lampadaire réparé : la télégestion le voit de nouveau fonctionner.",
                                  "en": "Lamp repaired: the remote monitoring sees it working again."},
    "report.notice.fault_since": {"fr": "Panne détectée par la télégestion le {when}.",
                                  "en": "Fault detected by the remote monitoring on {when}."},
    "report.notice.attached": {"fr": "Ce lampadaire est déjà signalé : votre signalement est rattaché "
                                     "à la demande {id}.",
                               "en": "This lamp is already reported: your report joins request {id}."},
    "report.notice.known_fault": {"fr": "Panne déjà détectée par la télégestion : une intervention va être "
                                        "programmée.",
                                  "en": "The remote monitoring already detected this fault: a repair will be "
                                        "scheduled."},
    "report.discovery.contact": {"fr": "{territory} : les signalements des habitants sur l'éclairage public et "
                                       "l'espace public, servis par citygate (docs/collector-api.md)",
                                 "en": "{territory}: the residents' reports of the street lighting and public "
                                       "space, run on citygate (docs/collector-api.md)"},
    "report.discovery.key": {"fr": "Aucune clé d'API n'est nécessaire : chacun peut signaler (une api_key "
                                   "envoyée est ignorée).",
                             "en": "No API key is needed: reports are open to anyone (an api_key sent is ignored)."},
    # -- the resident's follow page -----------------------------------------------------------------------
    "page.title": {"fr": "Votre signalement n° {id}", "en": "Your report no. {id}"},
    "page.status": {"fr": "État", "en": "Status"},
    "page.open": {"fr": "En cours de traitement", "en": "Being handled"},
    "page.closed": {"fr": "Terminé", "en": "Closed"},
    "page.note": {"fr": "Message du service", "en": "Message from the service"},
    "page.service": {"fr": "Objet", "en": "Subject"},
    "page.address": {"fr": "Lieu", "en": "Place"},
    "page.requested": {"fr": "Envoyé le", "en": "Sent on"},
    "page.updated": {"fr": "Mis à jour le", "en": "Updated on"},
    "page.expected": {"fr": "Intervention prévue le", "en": "Repair expected on"},
    "page.live": {"fr": "Cette page se met à jour d'elle-même.", "en": "This page updates by itself."},
    "page.other_lang": {"fr": "English", "en": "Français"},
    "page.date": {"fr": "{d} à {t}", "en": "{d} at {t}"},
}

add_messages(MESSAGES)
