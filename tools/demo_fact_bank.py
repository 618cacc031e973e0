"""Bilingual (English/French) bank of medical facts behind the demo fixtures (authored text).

Every English string a fixture contains is composed from these pairs and bilingual templates, so
each one has an authored French translation (resources/demo/llm/authored_translations.jsonl).
The facts are textbook-level first-line knowledge, written for the project.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Disease:
    """A disease with its key sign, first-line test and first-line treatment, in EN and FR."""

    en: str
    fr: str
    de_fr: str  # French "de + article + name" form
    sign_en: str
    sign_fr: str
    test_en: str
    test_fr: str
    treat_en: str
    treat_fr: str
    specialty: str


@dataclass(frozen=True)
class Drug:
    """A drug with its pharmacological class and a typical adverse effect, in EN and FR."""

    en: str
    fr: str
    class_en: str
    class_fr: str
    adverse_en: str
    adverse_fr: str


D = Disease
DISEASES: tuple[Disease, ...] = (
    D(
        "community-acquired pneumonia",
        "pneumonie aiguë communautaire",
        "de la pneumonie aiguë communautaire",
        "fever with productive cough and focal crackles",
        "fièvre avec toux productive et crépitants en foyer",
        "chest X-ray",
        "radiographie thoracique",
        "oral amoxicillin",
        "amoxicilline par voie orale",
        "pneumologie",
    ),
    D(
        "pulmonary embolism",
        "embolie pulmonaire",
        "de l'embolie pulmonaire",
        "sudden dyspnoea with pleuritic chest pain",
        "dyspnée brutale avec douleur thoracique pleurale",
        "CT pulmonary angiography",
        "angioscanner thoracique",
        "anticoagulation with low-molecular-weight heparin",
        "anticoagulation par héparine de bas poids moléculaire",
        "pneumologie",
    ),
    D(
        "asthma",
        "asthme",
        "de l'asthme",
        "recurrent wheezing reversible with bronchodilators",
        "sifflements récidivants réversibles sous bronchodilatateurs",
        "spirometry with reversibility testing",
        "spirométrie avec test de réversibilité",
        "inhaled corticosteroids",
        "corticoïdes inhalés",
        "pneumologie",
    ),
    D(
        "acute myocardial infarction",
        "infarctus du myocarde aigu",
        "de l'infarctus du myocarde aigu",
        "constrictive retrosternal chest pain lasting more than 20 minutes",
        "douleur thoracique rétrosternale constrictive de plus de 20 minutes",
        "12-lead electrocardiogram",
        "électrocardiogramme 12 dérivations",
        "emergency coronary angioplasty",
        "angioplastie coronaire en urgence",
        "cardiologie",
    ),
    D(
        "atrial fibrillation",
        "fibrillation atriale",
        "de la fibrillation atriale",
        "irregularly irregular pulse",
        "pouls irrégulier et anarchique",
        "surface electrocardiogram",
        "électrocardiogramme de surface",
        "oral anticoagulation guided by the CHA2DS2-VASc score",
        "anticoagulation orale guidée par le score CHA2DS2-VASc",
        "cardiologie",
    ),
    D(
        "heart failure",
        "insuffisance cardiaque",
        "de l'insuffisance cardiaque",
        "exertional dyspnoea with bilateral leg oedema",
        "dyspnée d'effort avec œdèmes des membres inférieurs",
        "transthoracic echocardiography",
        "échocardiographie transthoracique",
        "loop diuretics",
        "diurétiques de l'anse",
        "cardiologie",
    ),
    D(
        "type 1 diabetes",
        "diabète de type 1",
        "du diabète de type 1",
        "polyuria and polydipsia with weight loss",
        "syndrome polyuro-polydipsique avec amaigrissement",
        "fasting plasma glucose",
        "glycémie à jeun",
        "basal-bolus insulin therapy",
        "insulinothérapie basal-bolus",
        "endocrinologie",
    ),
    D(
        "hypothyroidism",
        "hypothyroïdie",
        "de l'hypothyroïdie",
        "fatigue, cold intolerance and weight gain",
        "asthénie, frilosité et prise de poids",
        "serum TSH",
        "dosage de la TSH",
        "levothyroxine",
        "lévothyroxine",
        "endocrinologie",
    ),
    D(
        "Graves' disease",
        "maladie de Basedow",
        "de la maladie de Basedow",
        "goitre with exophthalmos",
        "goitre avec exophtalmie",
        "TSH receptor antibodies",
        "anticorps anti-récepteur de la TSH",
        "synthetic antithyroid drugs",
        "antithyroïdiens de synthèse",
        "endocrinologie",
    ),
    D(
        "acute appendicitis",
        "appendicite aiguë",
        "de l'appendicite aiguë",
        "right iliac fossa pain with fever",
        "douleur de la fosse iliaque droite avec fièvre",
        "abdominal ultrasound",
        "échographie abdominale",
        "appendectomy",
        "appendicectomie",
        "chirurgie digestive",
    ),
    D(
        "acute pancreatitis",
        "pancréatite aiguë",
        "de la pancréatite aiguë",
        "epigastric pain radiating to the back",
        "douleur épigastrique transfixiante irradiant dans le dos",
        "serum lipase",
        "lipasémie",
        "fasting, intravenous fluids and analgesia",
        "mise à jeun, réhydratation intraveineuse et antalgiques",
        "hépato-gastro-entérologie",
    ),
    D(
        "Helicobacter pylori peptic ulcer",
        "ulcère gastroduodénal à Helicobacter pylori",
        "de l'ulcère gastroduodénal à Helicobacter pylori",
        "epigastric burning relieved by meals",
        "brûlures épigastriques calmées par les repas",
        "upper digestive endoscopy with biopsies",
        "fibroscopie œso-gastro-duodénale avec biopsies",
        "eradication therapy combining a proton pump inhibitor and antibiotics",
        "traitement d'éradication associant un inhibiteur de la pompe à protons "
        "et des antibiotiques",
        "hépato-gastro-entérologie",
    ),
    D(
        "iron-deficiency anaemia",
        "anémie ferriprive",
        "de l'anémie ferriprive",
        "pallor with microcytic anaemia",
        "pâleur avec anémie microcytaire",
        "serum ferritin",
        "ferritinémie",
        "oral iron supplementation",
        "supplémentation martiale orale",
        "hématologie",
    ),
    D(
        "bacterial meningitis",
        "méningite bactérienne",
        "de la méningite bactérienne",
        "fever, headache and neck stiffness",
        "fièvre, céphalées et raideur de nuque",
        "lumbar puncture",
        "ponction lombaire",
        "intravenous third-generation cephalosporin",
        "céphalosporine de troisième génération intraveineuse",
        "infectiologie",
    ),
    D(
        "ischaemic stroke",
        "accident vasculaire cérébral ischémique",
        "de l'accident vasculaire cérébral ischémique",
        "sudden hemiplegia with aphasia",
        "hémiplégie brutale avec aphasie",
        "brain MRI",
        "IRM cérébrale",
        "intravenous thrombolysis",
        "thrombolyse intraveineuse",
        "neurologie",
    ),
    D(
        "Parkinson's disease",
        "maladie de Parkinson",
        "de la maladie de Parkinson",
        "resting tremor with rigidity and bradykinesia",
        "tremblement de repos avec rigidité et akinésie",
        "clinical neurological examination",
        "examen neurologique clinique",
        "levodopa",
        "lévodopa",
        "neurologie",
    ),
    D(
        "migraine",
        "migraine",
        "de la migraine",
        "pulsating unilateral headache with photophobia",
        "céphalée pulsatile unilatérale avec photophobie",
        "clinical diagnostic criteria",
        "critères diagnostiques cliniques",
        "triptans",
        "triptans",
        "neurologie",
    ),
    D(
        "acute pyelonephritis",
        "pyélonéphrite aiguë",
        "de la pyélonéphrite aiguë",
        "fever with lumbar pain",
        "fièvre avec douleur lombaire",
        "urine culture",
        "examen cytobactériologique des urines",
        "oral fluoroquinolone",
        "fluoroquinolone orale",
        "urologie",
    ),
    D(
        "gout",
        "goutte",
        "de la goutte",
        "acute arthritis of the big toe",
        "arthrite aiguë du gros orteil",
        "joint fluid analysis for urate crystals",
        "ponction articulaire avec recherche de cristaux d'urate",
        "colchicine",
        "colchicine",
        "rhumatologie",
    ),
    D(
        "rheumatoid arthritis",
        "polyarthrite rhumatoïde",
        "de la polyarthrite rhumatoïde",
        "symmetric inflammatory polyarthritis of the hands",
        "polyarthrite inflammatoire bilatérale et symétrique des mains",
        "anti-CCP antibodies",
        "anticorps anti-CCP",
        "methotrexate",
        "méthotrexate",
        "rhumatologie",
    ),
    D(
        "acute angle-closure glaucoma",
        "glaucome aigu par fermeture de l'angle",
        "du glaucome aigu par fermeture de l'angle",
        "painful red eye with decreased vision",
        "œil rouge douloureux avec baisse de vision",
        "intraocular pressure measurement",
        "mesure de la pression intraoculaire",
        "intravenous acetazolamide",
        "acétazolamide intraveineux",
        "ophtalmologie",
    ),
    D(
        "pre-eclampsia",
        "prééclampsie",
        "de la prééclampsie",
        "hypertension with proteinuria after 20 weeks of pregnancy",
        "hypertension artérielle avec protéinurie après 20 semaines d'aménorrhée",
        "24-hour urine protein",
        "protéinurie des 24 heures",
        "delivery of the fetus and placenta",
        "extraction fœtale et placentaire",
        "gynécologie-obstétrique",
    ),
    D(
        "major depressive episode",
        "épisode dépressif caractérisé",
        "de l'épisode dépressif caractérisé",
        "persistent low mood with anhedonia",
        "humeur dépressive persistante avec anhédonie",
        "structured psychiatric interview",
        "entretien psychiatrique structuré",
        "selective serotonin reuptake inhibitors",
        "inhibiteurs sélectifs de la recapture de la sérotonine",
        "psychiatrie",
    ),
    D(
        "anaphylaxis",
        "choc anaphylactique",
        "du choc anaphylactique",
        "hypotension with urticaria after allergen exposure",
        "hypotension avec urticaire après exposition à un allergène",
        "serum tryptase",
        "dosage de la tryptase sérique",
        "intramuscular epinephrine",
        "adrénaline intramusculaire",
        "médecine d'urgence",
    ),
)

R = Drug
DRUGS: tuple[Drug, ...] = (
    R(
        "amoxicillin",
        "amoxicilline",
        "aminopenicillin",
        "aminopénicilline",
        "skin rash",
        "éruption cutanée",
    ),
    R("warfarin", "warfarine", "vitamin K antagonist", "antivitamine K", "bleeding", "hémorragie"),
    R("metformin", "metformine", "biguanide", "biguanide", "lactic acidosis", "acidose lactique"),
    R(
        "ramipril",
        "ramipril",
        "angiotensin-converting enzyme inhibitor",
        "inhibiteur de l'enzyme de conversion",
        "dry cough",
        "toux sèche",
    ),
    R(
        "amiodarone",
        "amiodarone",
        "class III antiarrhythmic",
        "antiarythmique de classe III",
        "thyroid dysfunction",
        "dysthyroïdie",
    ),
    R(
        "furosemide",
        "furosémide",
        "loop diuretic",
        "diurétique de l'anse",
        "hypokalaemia",
        "hypokaliémie",
    ),
    R(
        "omeprazole",
        "oméprazole",
        "proton pump inhibitor",
        "inhibiteur de la pompe à protons",
        "vitamin B12 deficiency",
        "carence en vitamine B12",
    ),
    R("atorvastatin", "atorvastatine", "statin", "statine", "myalgia", "myalgies"),
    R("lithium", "lithium", "mood stabiliser", "thymorégulateur", "tremor", "tremblement"),
    R(
        "haloperidol",
        "halopéridol",
        "typical antipsychotic",
        "antipsychotique typique",
        "extrapyramidal syndrome",
        "syndrome extrapyramidal",
    ),
    R(
        "morphine",
        "morphine",
        "opioid analgesic",
        "antalgique opioïde",
        "respiratory depression",
        "dépression respiratoire",
    ),
    R(
        "ibuprofen",
        "ibuprofène",
        "non-steroidal anti-inflammatory drug",
        "anti-inflammatoire non stéroïdien",
        "gastric ulcer",
        "ulcère gastrique",
    ),
    R(
        "methotrexate",
        "méthotrexate",
        "folate antagonist",
        "antifolique",
        "bone marrow suppression",
        "toxicité médullaire",
    ),
    R(
        "gentamicin",
        "gentamicine",
        "aminoglycoside",
        "aminoside",
        "nephrotoxicity",
        "néphrotoxicité",
    ),
    R(
        "prednisolone",
        "prednisolone",
        "glucocorticoid",
        "glucocorticoïde",
        "hyperglycaemia",
        "hyperglycémie",
    ),
    R(
        "sertraline",
        "sertraline",
        "selective serotonin reuptake inhibitor",
        "inhibiteur sélectif de la recapture de la sérotonine",
        "hyponatraemia",
        "hyponatrémie",
    ),
)

# Patient descriptions: English noun, French opening, French past-participle agreement suffix.
SEXES: tuple[tuple[str, str, str], ...] = (
    ("man", "Un homme", ""),
    ("woman", "Une femme", "e"),
)
