window.YTD.tweets.part0 = [
  {
    "tweet" : {
      "edit_info" : {
        "initial" : {
          "editTweetIds" : [
            "1052322330397974528"
          ],
          "editableUntil" : "2018-10-17T22:07:45.000Z",
          "editsRemaining" : "5",
          "isEditEligible" : true
        }
      },
      "retweeted" : false,
      "source" : "<a href=\"https://mobile.twitter.com\" rel=\"nofollow\">Twitter Web App</a>",
      "entities" : {
        "hashtags" : [ ],
        "symbols" : [ ],
        "user_mentions" : [ ],
        "urls" : [ ]
      },
      "display_text_range" : [
        "0",
        "92"
      ],
      "favorite_count" : "1204",
      "id_str" : "1052322330397974528",
      "truncated" : false,
      "retweet_count" : "87",
      "id" : "1052322330397974528",
      "created_at" : "Wed Oct 17 21:07:45 +0000 2018",
      "favorited" : false,
      "full_text" : "Training neural nets is a leaky abstraction &amp; you should know what happens under the hood",
      "lang" : "en"
    }
  },
  {
    "tweet" : {
      "retweeted" : false,
      "source" : "<a href=\"http://twitter.com/download/iphone\" rel=\"nofollow\">Twitter for iPhone</a>",
      "entities" : {
        "hashtags" : [ ],
        "symbols" : [ ],
        "user_mentions" : [
          {
            "name" : "Some One",
            "screen_name" : "someone",
            "indices" : [
              "0",
              "8"
            ],
            "id_str" : "12345",
            "id" : "12345"
          }
        ],
        "urls" : [ ]
      },
      "display_text_range" : [
        "0",
        "61"
      ],
      "favorite_count" : "15",
      "in_reply_to_status_id_str" : "1052300000000000000",
      "id_str" : "1052329999999999999",
      "in_reply_to_user_id" : "12345",
      "truncated" : false,
      "retweet_count" : "0",
      "id" : "1052329999999999999",
      "in_reply_to_status_id" : "1052300000000000000",
      "created_at" : "Thu Oct 18 08:00:01 +0000 2018",
      "favorited" : false,
      "full_text" : "@someone yes, the data engine matters more than the model &gt; 90% of the time",
      "lang" : "en",
      "in_reply_to_screen_name" : "someone",
      "in_reply_to_user_id_str" : "12345"
    }
  },
  {
    "tweet" : {
      "retweeted" : false,
      "source" : "<a href=\"https://mobile.twitter.com\" rel=\"nofollow\">Twitter Web App</a>",
      "entities" : {
        "hashtags" : [ ],
        "symbols" : [ ],
        "user_mentions" : [ ],
        "urls" : [ ]
      },
      "display_text_range" : [
        "0",
        "48"
      ],
      "favorite_count" : "302",
      "id_str" : "1060000000000000001",
      "truncated" : false,
      "retweet_count" : "12",
      "id" : "1060000000000000001",
      "created_at" : "Mon Nov 05 17:30:00 +0000 2018",
      "favorited" : false,
      "full_text" : "Self-driving cars will be solved by scaling data",
      "lang" : "en"
    }
  }
]
